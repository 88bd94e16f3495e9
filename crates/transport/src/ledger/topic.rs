//! Creating the ledger topic: one partition, so the ledger has a total order.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::error::{Result, TransportError};
use crate::kafka::KafkaSettings;

/// Makes sure the ledger topic exists with exactly one partition, creating it if absent.
/// Returns the topic's name.
pub async fn ensure_ledger_topic(settings: &KafkaSettings, timeout: Duration) -> Result<String> {
    let topic = settings.ledger_topic();
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config()
        .create()
        .map_err(TransportError::kafka("creating an admin client"))?;
    let partitions = {
        let metadata = admin
            .inner()
            .fetch_metadata(None, timeout)
            .map_err(TransportError::kafka("fetching topic metadata"))?;
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
    };
    match partitions {
        Some(1) => return Ok(topic),
        Some(partitions) => return Err(TransportError::LedgerPartitions { topic, partitions }),
        None => {}
    }
    create_topic(&admin, &topic, 1, timeout).await?;
    tracing::info!(%topic, "created the ledger topic (1 partition)");
    Ok(topic)
}

/// Whether `<prefix>.ledger` exists (nothing is created).
pub async fn ledger_topic_exists(settings: &KafkaSettings, timeout: Duration) -> Result<bool> {
    let topic = settings.ledger_topic();
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config()
        .create()
        .map_err(TransportError::kafka("creating an admin client"))?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, timeout)
        .map_err(TransportError::kafka("fetching topic metadata"))?;
    Ok(metadata.topics().iter().any(|t| t.name() == topic))
}

/// Creates `topic` with `partitions` partitions (replication factor 1 here; the cluster's
/// defaults apply otherwise); a topic that already exists is fine.
pub(crate) async fn create_topic(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<()> {
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(timeout)),
        )
        .await
        .map_err(TransportError::kafka(format!("creating topic {topic}")))?;
    for result in results {
        match result {
            // Another process created it between our look and our create: fine.
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(TransportError::Kafka {
                    operation: format!("creating topic {name}"),
                    source: rdkafka::error::KafkaError::AdminOp(code),
                });
            }
        }
    }
    Ok(())
}
