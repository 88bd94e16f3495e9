//! Connection settings shared by every Kafka client walproof creates.

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;

/// `fetch.wait.max.ms` of the readers that follow a topic as it grows (the ledger's readers, the
/// roots follower). librdkafka's default, 500 ms, is how long a broker may hold a fetch when no
/// new record has arrived; tansu holds it that long, so every record a follower waited for
/// arrived up to half a second late (reads measured at p50 132 ms / p99 250 ms with the default,
/// 2.5 / 5.4 ms with a 5 ms wait). The price is a fetch request every few milliseconds while the
/// topic is quiet.
pub const FOLLOWER_FETCH_WAIT_MS: &str = "10";

/// Where the brokers are, what the topics are called, and extra librdkafka properties.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic name prefix; topics are `<prefix>.ledger`, `<prefix>.<schema>.<table>`, ….
    pub topic_prefix: String,
    /// Extra librdkafka properties of every client (security, tuning), applied first: the
    /// settings each client needs for its guarantees (`acks`, idempotence,
    /// `enable.auto.commit`, …) are set after them and win.
    pub properties: Vec<(String, String)>,
    /// Extra properties of the producers only, applied after [`KafkaSettings::properties`]
    /// (`compression.type`, …: a producer property given to a consumer draws a librdkafka
    /// warning).
    pub producer_properties: Vec<(String, String)>,
    /// Extra properties of the consumers only, applied after [`KafkaSettings::properties`]
    /// (`fetch.max.bytes`, …).
    pub consumer_properties: Vec<(String, String)>,
}

impl KafkaSettings {
    /// Settings with no extra properties.
    pub fn new(brokers: impl Into<String>, topic_prefix: impl Into<String>) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.into(),
            topic_prefix: topic_prefix.into(),
            properties: Vec::new(),
            producer_properties: Vec::new(),
            consumer_properties: Vec::new(),
        }
    }

    /// `<prefix>.ledger`: one partition, the hash-chained source of truth.
    pub fn ledger_topic(&self) -> String {
        format!("{}.ledger", self.topic_prefix)
    }

    /// A librdkafka config with the brokers and every client's extra properties (an admin
    /// client's).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// The configuration a producer starts from: [`KafkaSettings::client_config`] and the
    /// producers' extra properties. The producer sets its own delivery settings after them.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        for (key, value) in &self.producer_properties {
            config.set(key, value);
        }
        config
    }

    /// The configuration of a reader: [`KafkaSettings::client_config`], the consumers' extra
    /// properties, `group` as its group id (librdkafka wants one even when the partition is
    /// assigned), offsets committed only explicitly, and fetches with the followers' short wait
    /// ([`FOLLOWER_FETCH_WAIT_MS`]).
    pub fn reader_config(&self, group: &str) -> ClientConfig {
        let mut config = self.client_config();
        for (key, value) in &self.consumer_properties {
            config.set(key, value);
        }
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", FOLLOWER_FETCH_WAIT_MS);
        config
    }
}

/// Client context of walproof's ledger readers: librdkafka errors go to `tracing`, except the
/// end-of-partition notice, which readers ask for and handle as a normal condition.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !end_of_partition {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for ReaderContext {}

/// Queues `record`, waiting while librdkafka's queue is full (it drains as the broker
/// acknowledges); any other refusal is an error naming `operation`.
pub(crate) async fn send<K, P>(
    producer: &rdkafka::producer::FutureProducer,
    mut record: rdkafka::producer::FutureRecord<'_, K, P>,
    operation: impl FnOnce() -> String,
) -> crate::Result<rdkafka::producer::DeliveryFuture>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                back,
            )) => {
                record = back;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Err((source, _)) => {
                return Err(crate::TransportError::Kafka {
                    operation: operation(),
                    source,
                });
            }
        }
    }
}

/// Waits until the broker acknowledged every delivery in `in_flight` (emptying it); the first
/// failure is an error naming `what` was being delivered.
pub(crate) async fn delivered(
    in_flight: &mut Vec<rdkafka::producer::DeliveryFuture>,
    what: &str,
) -> crate::Result<()> {
    for delivery in in_flight.drain(..) {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((source, _))) => {
                return Err(crate::TransportError::Kafka {
                    operation: format!("delivering {what}"),
                    source,
                });
            }
            Err(_) => {
                return Err(crate::TransportError::Kafka {
                    operation: format!("delivering {what} (producer gone)"),
                    source: KafkaError::Canceled,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> KafkaSettings {
        let mut settings = KafkaSettings::new("kafka:9092", "shop");
        settings.properties = vec![
            ("security.protocol".into(), "SASL_SSL".into()),
            ("fetch.wait.max.ms".into(), "99".into()),
        ];
        settings.producer_properties = vec![("compression.type".into(), "zstd".into())];
        settings.consumer_properties = vec![("fetch.max.bytes".into(), "1048576".into())];
        settings
    }

    #[test]
    fn producers_and_readers_each_get_their_own_properties_and_every_clients() {
        let settings = settings();
        let admin = settings.client_config();
        assert_eq!(admin.get("bootstrap.servers"), Some("kafka:9092"));
        assert_eq!(admin.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(admin.get("compression.type"), None);
        assert_eq!(admin.get("fetch.max.bytes"), None);

        let producer = settings.producer_config();
        assert_eq!(producer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(producer.get("compression.type"), Some("zstd"));
        assert_eq!(producer.get("fetch.max.bytes"), None);

        let reader = settings.reader_config("shop.committer");
        assert_eq!(reader.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(reader.get("fetch.max.bytes"), Some("1048576"));
        assert_eq!(reader.get("compression.type"), None);
        assert_eq!(reader.get("group.id"), Some("shop.committer"));
    }

    #[test]
    fn a_readers_own_settings_win_over_the_extra_properties() {
        let mut settings = settings();
        settings
            .consumer_properties
            .push(("enable.auto.commit".into(), "true".into()));
        let reader = settings.reader_config("shop.committer");
        assert_eq!(reader.get("enable.auto.commit"), Some("false"));
        assert_eq!(
            reader.get("fetch.wait.max.ms"),
            Some(FOLLOWER_FETCH_WAIT_MS)
        );
    }
}
