//! `vigil-webhook-receiver --listen ADDR --secret-file F`: a local webhook endpoint for
//! delivery figures. It verifies every request's signature, counts decisions once each by
//! `decision_id`, and measures how long each took from its `decided_ts` to arrival. After
//! `--idle` with no request, once some have come, it prints the figures and exits.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use vigil_webhook::signature;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9200")]
    listen: SocketAddr,
    #[arg(long)]
    secret_file: PathBuf,
    /// Stop this long after the last request.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    idle: Duration,
}

#[derive(Default)]
struct Tally {
    ids: HashSet<String>,
    duplicates: u64,
    requests: u64,
    bad_signatures: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    /// decided_ts → arrival, µs.
    latency: Option<Histogram<u64>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn receive(
    request: Request<hyper::body::Incoming>,
    secret: Arc<Vec<u8>>,
    tally: Arc<Mutex<Tally>>,
) -> Response<Full<Bytes>> {
    let header = request
        .headers()
        .get(signature::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return respond(StatusCode::BAD_REQUEST),
    };
    let arrived = now_ms();
    let mut tally = tally.lock().unwrap();
    tally.requests += 1;
    let now = Instant::now();
    tally.first.get_or_insert(now);
    tally.last = Some(now);
    if signature::verify(&secret, &header, &body, arrived / 1_000, Some(300)).is_err() {
        tally.bad_signatures += 1;
        return respond(StatusCode::UNAUTHORIZED);
    }
    let Ok(batch) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return respond(StatusCode::BAD_REQUEST);
    };
    for d in batch["decisions"].as_array().into_iter().flatten() {
        let id = d["decision_id"].as_str().unwrap_or_default().to_owned();
        if !tally.ids.insert(id) {
            tally.duplicates += 1;
            continue;
        }
        let decided = d["decided_ts"].as_i64().unwrap_or(arrived);
        let latency = tally
            .latency
            .get_or_insert_with(|| Histogram::new(3).unwrap());
        latency.saturating_record((arrived - decided).max(0) as u64 * 1_000);
    }
    respond(StatusCode::OK)
}

fn respond(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secret = std::fs::read_to_string(&args.secret_file)?;
    let secret = Arc::new(secret.trim_end_matches(['\n', '\r']).as_bytes().to_vec());
    let tally = Arc::new(Mutex::new(Tally::default()));
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!("receiving on http://{}/", args.listen);
    let accepting = {
        let (secret, tally) = (secret.clone(), tally.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (secret, tally) = (secret.clone(), tally.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let (secret, tally) = (secret.clone(), tally.clone());
                        async move { Ok::<_, Infallible>(receive(request, secret, tally).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    };
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let last = tally.lock().unwrap().last;
        if last.is_some_and(|last| last.elapsed() >= args.idle) {
            break;
        }
    }
    accepting.abort();
    let tally = tally.lock().unwrap();
    let span = tally
        .last
        .zip(tally.first)
        .map_or(0.0, |(l, f)| (l - f).as_secs_f64());
    let decisions = tally.ids.len() as u64;
    let latency = tally.latency.as_ref();
    let ms = |q: f64| latency.map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1_000.0);
    println!(
        "{decisions} decisions in {} requests over {span:.2} s: {:.0} decisions/s; {} duplicates, {} bad signatures; decided→received p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        tally.requests,
        decisions as f64 / span.max(1e-9),
        tally.duplicates,
        tally.bad_signatures,
        ms(0.5),
        ms(0.99),
        ms(1.0),
    );
    Ok(())
}
