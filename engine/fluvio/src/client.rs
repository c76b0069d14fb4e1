//! The connection to a Fluvio cluster, shared by the Fluvio source, the Fluvio sink and the
//! `produce`, `tail` and `topics` commands, and what the cluster says about a topic's
//! partitions. The endpoint is resolved as the Fluvio CLI would,
//! with the engine's configuration last: `FLUVIO_ENDPOINT`, else the current Fluvio profile
//! (`~/.fluvio/config`), else `fluvio.endpoint`. `FLUVIO_ENDPOINT` carries no TLS settings, so
//! it is refused when the profile it would override uses TLS: the engine never downgrades a
//! connection silently.

use std::sync::Arc;

use fluvio::config::{ConfigFile, TlsPolicy};
use fluvio::metadata::partition::{PartitionSpec, PartitionStatus};
use fluvio::metadata::topic::TopicSpec;
use fluvio::{Fluvio, FluvioClusterConfig};
use vigil_engine::config::FluvioConfig;
use vigil_engine::event::Offsets;

pub use crate::error::GET_A_CLUSTER;
use crate::error::{Error, Result};

/// Where the cluster is, and how that was decided (for logs and errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub config: Option<FluvioClusterConfig>,
    pub origin: String,
}

/// Resolves the endpoint from the environment, the Fluvio profile, then configuration.
pub fn resolve(settings: &FluvioConfig) -> Result<Endpoint> {
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
) -> Result<Endpoint> {
    if let Some(addr) = env.filter(|a| !a.is_empty()) {
        if let Some(cluster) = profile.filter(|c| c.tls != TlsPolicy::Disabled) {
            return Err(Error::EndpointBypassesTls {
                env: addr,
                profile: cluster.endpoint,
            });
        }
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
        None => Err(Error::NoCluster),
    }
}

/// Connects to the resolved cluster.
pub async fn connect(settings: &FluvioConfig) -> Result<Arc<Fluvio>> {
    let endpoint = resolve(settings)?;
    let config = endpoint
        .config
        .expect("resolve always yields a cluster config");
    let fluvio = Fluvio::connect_with_config(&config)
        .await
        .map_err(|e| Error::Connect {
            origin: endpoint.origin.clone(),
            detail: format!("{e:#}"),
        })?;
    tracing::info!(endpoint = %endpoint.origin, "Connected to Fluvio.");
    Ok(Arc::new(fluvio))
}

/// The partition count of `topic`.
pub async fn partition_count(fluvio: &Fluvio, topic: &str) -> Result<u32> {
    let topics = fluvio
        .admin()
        .await
        .all::<TopicSpec>()
        .await
        .map_err(|e| Error::client("cannot list Fluvio topics", e))?;
    let spec = topics
        .into_iter()
        .find(|t| t.name == topic)
        .ok_or_else(|| Error::NoTopic(topic.to_owned()))?
        .spec;
    Ok(spec.partitions())
}

/// Each partition's end: the leader's high watermark, one past its last readable offset.
pub async fn end_offsets(fluvio: &Fluvio, topic: &str) -> Result<Offsets> {
    partition_offsets(fluvio, topic, |status| status.leader.hw).await
}

/// Each partition's start: the first offset still in its log (above 0 once retention has
/// removed older segments).
pub async fn start_offsets(fluvio: &Fluvio, topic: &str) -> Result<Offsets> {
    partition_offsets(fluvio, topic, |status| status.base_offset).await
}

async fn partition_offsets(
    fluvio: &Fluvio,
    topic: &str,
    offset: impl Fn(&PartitionStatus) -> i64,
) -> Result<Offsets> {
    let partitions = fluvio
        .admin()
        .await
        .all::<PartitionSpec>()
        .await
        .map_err(|e| Error::client("cannot list Fluvio partitions", e))?;
    let prefix = format!("{topic}-");
    Ok(partitions
        .into_iter()
        .filter_map(|p| {
            let partition: u32 = p.name.strip_prefix(&prefix)?.parse().ok()?;
            Some((partition, offset(&p.status).max(0) as u64))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(endpoint: Option<&str>) -> FluvioConfig {
        FluvioConfig {
            endpoint: endpoint.map(str::to_owned),
            ..vigil_engine::config::Config::builtin().fluvio
        }
    }

    #[test]
    fn an_endpoint_from_the_environment_never_drops_the_profiles_tls() {
        let mut profile = FluvioClusterConfig::new("cloud.example:9003");
        profile.tls = TlsPolicy::Anonymous;
        let err = resolve_from(
            Some("127.0.0.1:9003".into()),
            Some(profile),
            &settings(None),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("FLUVIO_ENDPOINT=127.0.0.1:9003")
                && err.contains("cloud.example:9003 with TLS"),
            "{err}"
        );
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
