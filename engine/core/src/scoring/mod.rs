//! Scoring: what one event means for its customer. `features` folds the event into the
//! customer's rolling features; `models` holds the fraud and churn models in force (hot
//! swappable); `policy` turns a score and the hard rules into an action; `decide` runs the
//! three in order for one event, within the latency budget, and builds the `Outcome`;
//! `repeats` recognises an event the customer already had processed; `inactivity` scores a
//! customer who has gone quiet when their inactivity checks come due; `lists` holds the risk
//! team's named lists the policy checks payments against.
//!
//! Everything here is synchronous and holds no I/O, so it can be tested and measured without
//! actors, and replay and training run exactly the code the live actors run.

mod decide;
pub mod features;
mod inactivity;
pub mod lists;
pub mod live_policy;
pub mod models;
pub mod policy;
mod repeats;

pub use decide::{AfterFeatures, CustomerState, CustomerView, FeatureValue, Scoring};
