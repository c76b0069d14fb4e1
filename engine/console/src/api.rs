//! The console's HTTP routes: the page, and the JSON API it runs on (README, "The risk
//! console"). Every `/api` route needs an analyst's bearer token when the console has tokens
//! (`Authorization: Bearer …`, or `?access_token=…` where a browser cannot set headers, as for
//! the live stream); the page itself is static and asks for the token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_engine::event::wall_clock_ms;
use vigil_engine::feedback::{Feedback, Verdict};
use vigil_engine::pipeline::lookout::{Lookout, Status};
use vigil_engine::profile::Profile;
use vigil_engine::scoring::CustomerView;
use vigil_engine::telemetry::Telemetry;

use crate::auth::Tokens;
use crate::recent::{Filter, Recent};
use crate::streams::StreamClient;
use crate::verdicts::Verdicts;

/// The page: one self-contained file, no build step, nothing fetched from elsewhere.
const PAGE: &str = include_str!("page.html");
/// The longest note a verdict may carry.
const MAX_NOTE_CHARS: usize = 2_000;
/// Decisions a customer's page lists.
const CUSTOMER_DECISIONS: usize = 20;

/// What every route shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub lookout: Arc<Lookout>,
    pub recent: Arc<Recent>,
    pub tokens: Arc<Tokens>,
    /// Where verdicts go; one writer at a time.
    pub verdicts: Arc<Mutex<Verdicts>>,
    pub telemetry: Telemetry,
    /// Live stream clients connected now.
    pub stream_clients: Arc<AtomicU64>,
}

/// The analyst a request was made by.
#[derive(Debug, Clone)]
struct Analyst(String);

pub(crate) fn routes(shared: Shared) -> Router {
    let api = Router::new()
        .route("/decisions", get(decisions))
        .route("/decisions/{id}/feedback", post(feedback))
        .route("/stream", get(stream))
        .route("/customers/{id}", get(customer))
        .route("/status", get(status))
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            require_analyst,
        ));
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .nest("/api", api)
        .with_state(shared)
}

/// An error as the API answers it: a status and `{"error": …}`.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("header value"),
            );
        }
        response
    }
}

fn bad_request(reason: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, reason)
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

async fn require_analyst(
    State(shared): State<Shared>,
    Query(query): Query<TokenQuery>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let presented = bearer.or(query.access_token.as_deref());
    let analyst = shared.tokens.analyst(presented).ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            match presented {
                None => "an analyst's token is required: Authorization: Bearer TOKEN".into(),
                Some(_) => "the token is not one of the console's".into(),
            },
        )
    })?;
    let analyst = Analyst(analyst.to_owned());
    request.extensions_mut().insert(analyst);
    Ok(next.run(request).await)
}

#[derive(Serialize)]
struct Decisions {
    decisions: Vec<Arc<Decision>>,
}

async fn decisions(
    State(shared): State<Shared>,
    Query(filter): Query<Filter>,
) -> Result<Json<Decisions>, ApiError> {
    let matcher = filter.matcher().map_err(bad_request)?;
    Ok(Json(Decisions {
        decisions: shared.recent.query(&matcher),
    }))
}

/// New decisions as Server-Sent Events (`event: decision`), filtered like `/api/decisions`.
/// A client that falls `console.stream_buffer` decisions behind gets `event: dropped` and the
/// end of the stream; the engine never waits for it.
async fn stream(
    State(shared): State<Shared>,
    Query(filter): Query<Filter>,
) -> Result<Response, ApiError> {
    let matcher = filter.matcher().map_err(bad_request)?;
    let client = StreamClient::new(
        shared.lookout.following.subscribe(),
        shared.stream_clients.clone(),
    );
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    Ok((headers, Body::from_stream(client.events(matcher))).into_response())
}

#[derive(Deserialize)]
struct CustomerQuery {
    /// Start the customer's actor if they are passivated.
    wake: Option<bool>,
}

#[derive(Serialize)]
struct CustomerPage {
    customer_id: String,
    /// Their state; none when the engine has not seen them.
    state: Option<CustomerView>,
    /// Their recent decisions, newest first.
    decisions: Vec<Arc<Decision>>,
    /// The models behind those decisions.
    models: Vec<String>,
    profile: Option<Profile>,
}

async fn customer(
    State(shared): State<Shared>,
    Path(customer_id): Path<String>,
    Query(query): Query<CustomerQuery>,
) -> Result<Json<CustomerPage>, ApiError> {
    let state = shared
        .lookout
        .customer(&customer_id, query.wake.unwrap_or(false))
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let filter = Filter {
        customer: Some(customer_id.clone()),
        limit: Some(CUSTOMER_DECISIONS),
        ..Filter::default()
    };
    let decisions = shared.recent.query(&filter.matcher().map_err(bad_request)?);
    if state.is_none() && decisions.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("customer {customer_id:?} is not known to the engine"),
        ));
    }
    let mut models: Vec<String> = decisions
        .iter()
        .filter_map(|d| d.model.as_deref().map(str::to_owned))
        .collect();
    models.sort();
    models.dedup();
    Ok(Json(CustomerPage {
        profile: shared.lookout.profile(&customer_id),
        customer_id,
        state,
        decisions,
        models,
    }))
}

#[derive(Serialize)]
struct StatusPage {
    #[serde(flatten)]
    engine: Status,
    /// Decisions the console keeps, and live stream clients.
    recent_decisions: usize,
    stream_clients: u64,
}

async fn status(State(shared): State<Shared>) -> Json<StatusPage> {
    Json(StatusPage {
        engine: shared.lookout.status(),
        recent_decisions: shared.recent.len(),
        stream_clients: shared.stream_clients.load(Ordering::Relaxed),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictBody {
    verdict: Verdict,
    note: Option<String>,
}

/// Records an analyst's verdict on a recent fraud decision in the feedback sink.
async fn feedback(
    State(shared): State<Shared>,
    Extension(Analyst(analyst)): Extension<Analyst>,
    Path(decision_id): Path<String>,
    body: Result<Json<VerdictBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Feedback>), ApiError> {
    let Json(body) = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    if body
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("`note` is longer than {MAX_NOTE_CHARS} characters"),
        ));
    }
    let decision = shared.recent.find(&decision_id).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("decision {decision_id:?} is not among the console's recent decisions (console.recent)"),
        )
    })?;
    if !matches!(
        decision.decision,
        DecisionKind::Freeze | DecisionKind::Alert
    ) {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "verdicts are on fraud decisions (freeze, alert); {decision_id:?} is {}",
                decision.decision.name()
            ),
        ));
    }
    let feedback = Feedback {
        decision_id,
        event_id: decision.event_id.clone(),
        customer_id: decision.customer_id.clone(),
        event_ts: decision.event_ts,
        decision: decision.decision,
        verdict: body.verdict,
        analyst,
        note: body.note,
        ts: wall_clock_ms(),
    };
    shared
        .verdicts
        .lock()
        .await
        .record(&feedback)
        .await
        .map_err(|reason| ApiError(StatusCode::SERVICE_UNAVAILABLE, reason))?;
    shared.telemetry.feedback(feedback.verdict);
    Ok((StatusCode::CREATED, Json(feedback)))
}
