//! `vigil topics create`: the topics a Vigil deployment uses, one per role.

use fluvio::metadata::topic::TopicSpec;
use fluvio::Fluvio;

use crate::error::{Error, Result};

/// The topics a Vigil deployment uses, by role: `profiles` is the customer-profile changelog
/// (`--profiles fluvio:{prefix}-profiles`), keyed by customer id like the events, and `lists`
/// the changes to the policy's lists (`--lists fluvio:{prefix}-lists`), keyed by value;
/// `feedback` holds analysts' verdicts from the risk console (`console.feedback`).
pub const TOPIC_ROLES: [&str; 7] = [
    "events",
    "decisions",
    "dead-letters",
    "shadow",
    "profiles",
    "lists",
    "feedback",
];

/// Creates `{prefix}-{role}` for every role with `partitions` partitions; topics that already
/// exist are left as they are. Returns each topic with whether it was created.
pub async fn create_topics(
    fluvio: &Fluvio,
    prefix: &str,
    partitions: u32,
) -> Result<Vec<(String, bool)>> {
    let admin = fluvio.admin().await;
    let existing: Vec<String> = admin
        .all::<TopicSpec>()
        .await
        .map_err(|e| Error::client("cannot list Fluvio topics", e))?
        .into_iter()
        .map(|t| t.name)
        .collect();
    let mut created = Vec::new();
    for role in TOPIC_ROLES {
        let name = format!("{prefix}-{role}");
        if existing.contains(&name) {
            created.push((name, false));
            continue;
        }
        admin
            .create(
                name.clone(),
                false,
                TopicSpec::new_computed(partitions, 1, None),
            )
            .await
            .map_err(|e| Error::Refused {
                what: format!("cannot create Fluvio topic `{name}`"),
                detail: format!("{e:#}"),
            })?;
        created.push((name, true));
    }
    Ok(created)
}
