//! Who may use the console: analysts' bearer tokens, each with a name that their verdicts are
//! recorded under. Tokens come from `console.token_file` (`name:token` lines) and from the
//! environment variable `console.token_env` (`name:token` pairs separated by commas); only
//! their SHA-256 digests are kept. Without any token the console serves loopback only, and
//! every verdict is recorded as `local`.

use std::path::Path;

use sha2::{Digest, Sha256};
use vigil_engine::config::Config;
use vigil_engine::Error;

/// The name verdicts are recorded under on a console without tokens.
pub const LOCAL_ANALYST: &str = "local";

/// The analysts' tokens, as digests.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    analysts: Vec<(String, [u8; 32])>,
}

impl Tokens {
    /// The tokens `config` names; an unreadable file or a line without a name is an error
    /// naming the key (and the file and line).
    pub fn load(config: &Config) -> Result<Tokens, Error> {
        let console = &config.console;
        let mut tokens = Tokens::default();
        if let Some(path) = &console.token_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                config.invalid(
                    "console.token_file",
                    format!("cannot be read ({}): {e}", path.display()),
                )
            })?;
            tokens.add_lines(text.lines(), path, config)?;
        }
        if let Ok(value) = std::env::var(&console.token_env) {
            let source = Path::new(console.token_env.as_str());
            tokens.add_lines(value.split(','), source, config)?;
        }
        Ok(tokens)
    }

    fn add_lines<'a>(
        &mut self,
        lines: impl Iterator<Item = &'a str>,
        source: &Path,
        config: &Config,
    ) -> Result<(), Error> {
        for (i, line) in lines.enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((name, token)) if !name.trim().is_empty() && !token.trim().is_empty() => {
                    self.add(name.trim(), token.trim());
                }
                _ => {
                    return Err(config.invalid(
                        "console.token_file",
                        format!("{} entry {} is not `name:token`", source.display(), i + 1),
                    ))
                }
            }
        }
        Ok(())
    }

    pub fn add(&mut self, name: &str, token: &str) {
        self.analysts.push((name.to_owned(), digest(token)));
    }

    /// Whether the console asks for tokens at all.
    pub fn required(&self) -> bool {
        !self.analysts.is_empty()
    }

    /// The analyst `presented` belongs to: `local` when no token is required, none when the
    /// token is missing or unknown.
    pub fn analyst(&self, presented: Option<&str>) -> Option<&str> {
        if !self.required() {
            return Some(LOCAL_ANALYST);
        }
        let presented = digest(presented?);
        self.analysts
            .iter()
            .find(|(_, d)| *d == presented)
            .map(|(name, _)| name.as_str())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_engine::config::Layers;

    #[test]
    fn tokens_name_their_analyst_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.txt");
        std::fs::write(&file, "# analysts\nana: t-ana\nbo:t-bo\n").unwrap();
        let config = Config::load(&Layers {
            set: vec![format!("console.token_file={}", file.display())],
            ..Layers::default()
        })
        .unwrap();
        let tokens = Tokens::load(&config).unwrap();
        assert!(tokens.required());
        assert_eq!(tokens.analyst(Some("t-bo")), Some("bo"));
        assert_eq!(tokens.analyst(Some("t-ana")), Some("ana"));
        assert_eq!(tokens.analyst(Some("t-eve")), None);
        assert_eq!(tokens.analyst(None), None);
        assert_eq!(Tokens::default().analyst(None), Some(LOCAL_ANALYST));

        std::fs::write(&file, "ana:t-ana\njust-a-token\n").unwrap();
        let err = Tokens::load(&config).unwrap_err().to_string();
        assert!(
            err.contains("console.token_file") && err.contains("tokens.txt entry 2"),
            "{err}"
        );
    }
}
