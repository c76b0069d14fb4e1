//! The connection to a Fluvio cluster, shared by the Fluvio source, the Fluvio sink and the
//! `produce`, `tail` and `topics` commands. The endpoint is resolved as the Fluvio CLI would,
//! with the engine's configuration last: `FLUVIO_ENDPOINT`, else the current Fluvio profile
//! (`~/.fluvio/config`), else `fluvio.endpoint`.

use std::sync::Arc;

use anyhow::Context;
use fluvio::config::ConfigFile;
use fluvio::metadata::partition::PartitionSpec;
use fluvio::metadata::topic::TopicSpec;
use fluvio::{Fluvio, FluvioClusterConfig};

use crate::checkpoint::Offsets;
use crate::config::FluvioConfig;

/// Where the cluster is, and how that was decided (for logs and errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub config: Option<FluvioClusterConfig>,
    pub origin: String,
}

/// Resolves the endpoint from the environment, the Fluvio profile, then configuration.
pub fn resolve(settings: &FluvioConfig) -> anyhow::Result<Endpoint> {
    resolve_from(
        std::env::var("FLUVIO_ENDPOINT").ok(),
        ConfigFile::load(None)
            .ok()
            .and_then(|file| file.config().current_cluster().ok().cloned()),
        settings,
    )
}

fn resolve_from(
    env: Option<String>,
    profile: Option<FluvioClusterConfig>,
    settings: &FluvioConfig,
) -> anyhow::Result<Endpoint> {
    if let Some(addr) = env.filter(|a| !a.is_empty()) {
        return Ok(Endpoint {
            config: Some(FluvioClusterConfig::new(addr.clone())),
            origin: format!("FLUVIO_ENDPOINT={addr}"),
        });
    }
    if let Some(cluster) = profile {
        return Ok(Endpoint {
            origin: format!("the current Fluvio profile ({})", cluster.endpoint),
            config: Some(cluster),
        });
    }
    match &settings.endpoint {
        Some(addr) => Ok(Endpoint {
            config: Some(FluvioClusterConfig::new(addr.clone())),
            origin: format!("fluvio.endpoint = {addr}"),
        }),
        None => anyhow::bail!(
            "no Fluvio cluster: set FLUVIO_ENDPOINT, create a Fluvio profile, or set fluvio.endpoint in the configuration"
        ),
    }
}

/// Connects to the resolved cluster.
pub async fn connect(settings: &FluvioConfig) -> anyhow::Result<Arc<Fluvio>> {
    let endpoint = resolve(settings)?;
    let config = endpoint
        .config
        .expect("resolve always yields a cluster config");
    let fluvio = Fluvio::connect_with_config(&config)
        .await
        .with_context(|| format!("cannot connect to Fluvio at {}", endpoint.origin))?;
    tracing::info!(endpoint = %endpoint.origin, "Connected to Fluvio.");
    Ok(Arc::new(fluvio))
}

/// The partition count of `topic`.
pub async fn partition_count(fluvio: &Fluvio, topic: &str) -> anyhow::Result<u32> {
    let topics = fluvio
        .admin()
        .await
        .all::<TopicSpec>()
        .await
        .context("cannot list Fluvio topics")?;
    let spec = topics
        .into_iter()
        .find(|t| t.name == topic)
        .with_context(|| format!("Fluvio topic `{topic}` does not exist"))?
        .spec;
    Ok(spec.partitions())
}

/// Each partition's end: the leader's high watermark, one past its last readable offset.
pub async fn end_offsets(fluvio: &Fluvio, topic: &str) -> anyhow::Result<Offsets> {
    let partitions = fluvio
        .admin()
        .await
        .all::<PartitionSpec>()
        .await
        .context("cannot list Fluvio partitions")?;
    let prefix = format!("{topic}-");
    Ok(partitions
        .into_iter()
        .filter_map(|p| {
            let partition: u32 = p.name.strip_prefix(&prefix)?.parse().ok()?;
            Some((partition, p.status.leader.hw.max(0) as u64))
        })
        .collect())
}

/// The topics a Vigil deployment uses, by role.
pub const TOPIC_ROLES: [&str; 4] = ["events", "decisions", "dead-letters", "shadow"];

/// Creates `{prefix}-{role}` for every role with `partitions` partitions; topics that already
/// exist are left as they are. Returns each topic with whether it was created.
pub async fn create_topics(
    fluvio: &Fluvio,
    prefix: &str,
    partitions: u32,
) -> anyhow::Result<Vec<(String, bool)>> {
    let admin = fluvio.admin().await;
    let existing: Vec<String> = admin
        .all::<TopicSpec>()
        .await
        .context("cannot list Fluvio topics")?
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
            .with_context(|| format!("cannot create Fluvio topic `{name}`"))?;
        created.push((name, true));
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(endpoint: Option<&str>) -> FluvioConfig {
        FluvioConfig {
            endpoint: endpoint.map(str::to_owned),
            ..FluvioConfig::default()
        }
    }

    #[test]
    fn environment_then_profile_then_configuration() {
        let profile = FluvioClusterConfig::new("10.0.0.1:9003");
        let e = resolve_from(
            Some("127.0.0.1:9003".into()),
            Some(profile.clone()),
            &settings(Some("c:1")),
        )
        .unwrap();
        assert_eq!(e.config.unwrap().endpoint, "127.0.0.1:9003");
        assert!(e.origin.starts_with("FLUVIO_ENDPOINT"));

        let e = resolve_from(None, Some(profile), &settings(Some("c:1"))).unwrap();
        assert_eq!(e.config.unwrap().endpoint, "10.0.0.1:9003");

        let e = resolve_from(Some(String::new()), None, &settings(Some("c:1"))).unwrap();
        assert_eq!(e.config.unwrap().endpoint, "c:1");
        assert!(e.origin.contains("fluvio.endpoint"));

        let err = resolve_from(None, None, &settings(None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("FLUVIO_ENDPOINT"), "{err}");
    }
}
