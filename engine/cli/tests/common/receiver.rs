//! A webhook receiver for the tests: a real HTTP/1.1 server on 127.0.0.1 that checks every
//! request's `Vigil-Signature` as the README tells receivers to (HMAC-SHA256 of
//! `"{t}.{body}"`, computed here independently of the engine's code, within a replay window),
//! records every decision by `decision_id`, and answers as its schedule says: accept, fail with
//! a status, throttle with `Retry-After`, or drop the connection mid-request.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Status(u16),
    /// 429 with `Retry-After` in seconds.
    Throttle(u64),
    /// Read the request, then close the connection without answering.
    Drop,
}

/// What the receiver answers at each moment since it started.
pub type Schedule = Box<dyn Fn(Duration) -> Answer + Send + Sync>;

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    secret: Vec<u8>,
    started: Instant,
    schedule: Mutex<Schedule>,
    /// decision_id → the decision, as first received.
    decisions: Mutex<BTreeMap<String, serde_json::Value>>,
    /// Idempotency keys accepted.
    keys: Mutex<BTreeSet<String>>,
    requests: AtomicU64,
    accepted_requests: AtomicU64,
    duplicates: AtomicU64,
    bad_signatures: AtomicU64,
    /// Arrival times of accepted requests, for throughput.
    last_accept: Mutex<Option<Instant>>,
    first_accept: Mutex<Option<Instant>>,
}

/// The replay window the receiver enforces, as the README suggests.
const WINDOW_S: i64 = 300;

impl Receiver {
    /// Starts a receiver on an ephemeral port that verifies with `secret`.
    pub async fn start(secret: &str, schedule: Schedule) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            secret: secret.as_bytes().to_vec(),
            started: Instant::now(),
            schedule: Mutex::new(schedule),
            decisions: Mutex::new(BTreeMap::new()),
            keys: Mutex::new(BTreeSet::new()),
            requests: AtomicU64::new(0),
            accepted_requests: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
            last_accept: Mutex::new(None),
            first_accept: Mutex::new(None),
        });
        let serving = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let (kill, killed) = oneshot::channel::<()>();
                    let kill = Arc::new(Mutex::new(Some(kill)));
                    let service = service_fn(move |request| {
                        let (state, kill) = (state.clone(), kill.clone());
                        async move { Ok::<_, Infallible>(state.answer(request, kill).await) }
                    });
                    let connection = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        // Dropping the connection closes it with the request unanswered.
                        _ = killed => {}
                    }
                });
            }
        });
        Receiver { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/vigil", self.addr)
    }

    /// Answers as `schedule` says from now on.
    pub fn answer_with(&self, schedule: Schedule) {
        *self.state.schedule.lock().unwrap() = schedule;
    }

    pub fn decisions(&self) -> BTreeMap<String, serde_json::Value> {
        self.state.decisions.lock().unwrap().clone()
    }

    pub fn ids(&self) -> BTreeSet<String> {
        self.state
            .decisions
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    pub fn accepted_requests(&self) -> u64 {
        self.state.accepted_requests.load(Ordering::Relaxed)
    }

    pub fn duplicates(&self) -> u64 {
        self.state.duplicates.load(Ordering::Relaxed)
    }

    pub fn bad_signatures(&self) -> u64 {
        self.state.bad_signatures.load(Ordering::Relaxed)
    }

    /// From the first accepted request to the last.
    pub fn accepting_for(&self) -> Duration {
        let first = *self.state.first_accept.lock().unwrap();
        let last = *self.state.last_accept.lock().unwrap();
        match (first, last) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        }
    }
}

impl State {
    async fn answer(
        &self,
        request: Request<Incoming>,
        kill: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    ) -> Response<Full<Bytes>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = (self.schedule.lock().unwrap())(self.started.elapsed());
        let signature = request
            .headers()
            .get("vigil-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let key = request
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Ok(body) = request.into_body().collect().await.map(|b| b.to_bytes()) else {
            return respond(400, "body lost");
        };
        match answer {
            Answer::Drop => {
                if let Some(kill) = kill.lock().unwrap().take() {
                    let _ = kill.send(());
                }
                std::future::pending::<()>().await;
                unreachable!("the connection is dropped")
            }
            Answer::Status(status) => return respond(status, "scheduled failure"),
            Answer::Throttle(after) => {
                let mut response = respond(429, "slow down");
                response
                    .headers_mut()
                    .insert("retry-after", after.to_string().parse().unwrap());
                return response;
            }
            Answer::Accept => {}
        }
        if !signature.is_some_and(|s| self.verifies(&s, &body)) {
            self.bad_signatures.fetch_add(1, Ordering::Relaxed);
            return respond(401, "bad signature");
        }
        let parsed: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return respond(400, "not JSON"),
        };
        {
            let mut decisions = self.decisions.lock().unwrap();
            for d in parsed["decisions"].as_array().into_iter().flatten() {
                let id = d["decision_id"].as_str().unwrap().to_owned();
                if decisions.insert(id, d.clone()).is_some() {
                    self.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Some(key) = key {
            self.keys.lock().unwrap().insert(key);
        }
        self.accepted_requests.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        self.first_accept.lock().unwrap().get_or_insert(now);
        *self.last_accept.lock().unwrap() = Some(now);
        respond(200, "ok")
    }

    /// The README's verification: `t` within the window, and some `v1` equal to
    /// HMAC-SHA256(secret, "{t}.{body}").
    fn verifies(&self, header: &str, body: &[u8]) -> bool {
        let mut t = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", v)) => t = v.parse::<i64>().ok(),
                Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
                _ => {}
            }
        }
        let Some(t) = t else { return false };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if (now - t).abs() > WINDOW_S {
            return false;
        }
        signatures.iter().any(|signature| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).unwrap();
            mac.update(format!("{t}.").as_bytes());
            mac.update(body);
            mac.verify_slice(signature).is_ok()
        })
    }
}

fn respond(status: u16, text: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .unwrap()
}
