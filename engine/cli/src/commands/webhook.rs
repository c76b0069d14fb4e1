//! `vigil webhook verify`: checks a saved webhook request's signature, for receivers debugging
//! their side. The request is the raw HTTP request as received (request line, headers, a
//! blank line, then the body exactly as sent), from a file or standard input; the secret comes
//! from a file, never the command line.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use vigil_webhook::signature::{self, HEADER};

#[derive(clap::Subcommand)]
pub enum WebhookCommand {
    /// Check the Vigil-Signature of a saved request against its body.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The raw HTTP request, or - for standard input.
    request: PathBuf,
    /// The file holding the signing secret (its trailing newline is not part of it).
    #[arg(long)]
    secret_file: PathBuf,
    /// Refuse a signature made further than this from now, as a receiver's replay window
    /// should; 0s checks the signature only (for requests saved long ago).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    tolerance: Duration,
}

pub async fn execute(command: WebhookCommand) -> anyhow::Result<()> {
    let WebhookCommand::Verify(args) = command;
    let secret = std::fs::read_to_string(&args.secret_file)
        .with_context(|| format!("cannot read --secret-file {}", args.secret_file.display()))?;
    let secret = secret.trim_end_matches(['\n', '\r']);
    let mut request = Vec::new();
    if args.request.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut request)?;
    } else {
        request = std::fs::read(&args.request)
            .with_context(|| format!("cannot read {}", args.request.display()))?;
    }
    let (header, body) = split_request(&request)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let window = (!args.tolerance.is_zero()).then_some(args.tolerance.as_secs() as i64);
    let signed = signature::verify(secret.as_bytes(), &header, body, now, window)?;
    let decisions = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["decisions"].as_array().map(Vec::len));
    println!(
        "valid: signed at t={signed} ({} s ago), body of {} bytes{}",
        now - signed,
        body.len(),
        decisions.map_or(String::new(), |n| format!(
            " holding {n} decision{}",
            if n == 1 { "" } else { "s" }
        ))
    );
    Ok(())
}

/// The signature header's value and the body of a raw HTTP request.
fn split_request(request: &[u8]) -> anyhow::Result<(String, &[u8])> {
    let (head, body) = match find(request, b"\r\n\r\n") {
        Some(at) => (&request[..at], &request[at + 4..]),
        None => match find(request, b"\n\n") {
            Some(at) => (&request[..at], &request[at + 2..]),
            None => {
                bail!("no blank line ends the headers: save the whole request, headers and body")
            }
        },
    };
    let head = std::str::from_utf8(head).context("the headers are not UTF-8")?;
    let header = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case(HEADER))
        .map(|(_, value)| value.trim().to_owned())
        .with_context(|| format!("the request has no {HEADER} header"))?;
    Ok((header, body))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_request_splits_into_its_signature_and_exact_body() {
        let request = b"POST /hooks HTTP/1.1\r\nHost: x\r\nvigil-signature: t=1,v1=ab\r\n\r\n{\"decisions\":[]}\r\n";
        let (header, body) = split_request(request).unwrap();
        assert_eq!(header, "t=1,v1=ab");
        assert_eq!(body, b"{\"decisions\":[]}\r\n");
        assert!(split_request(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n{}")
            .unwrap_err()
            .to_string()
            .contains("no Vigil-Signature"));
    }
}
