//! One-partition topics of string-keyed records beside the ledger (`<prefix>.roots`,
//! `<prefix>.attestations`): creating one, writing to it, reading it to its end.
//!
//! This layer moves keys and bytes; the modules of each topic give them meaning.

use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::error::{Result, TransportError};
use crate::kafka::{KafkaSettings, ReaderContext};
use crate::ledger::create_topic;

/// A record as read: its offset, its key (empty when absent, non-UTF-8 bytes replaced) and
/// its value.
pub(crate) type Record = (i64, String, Vec<u8>);

/// A one-partition topic and what errors call its records.
#[derive(Debug, Clone)]
pub(crate) struct Topic {
    /// Its name, e.g. `shop.roots`.
    pub(crate) name: String,
    /// Its records in errors: `roots` in "creating the roots reader".
    pub(crate) records: &'static str,
    /// One of them in errors: `a root` in "delivering a root".
    pub(crate) a_record: &'static str,
}

/// Where a read of a topic stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// When the broker reports the end of the partition: every record written before the
    /// read, but a topic written to without pause may never report it.
    EndReported,
    /// At the high watermark fetched when the read starts (or when the end is reported
    /// first): what is written meanwhile is left for the next read.
    HighWatermark,
}

impl Topic {
    /// Makes sure the topic exists (one partition), creating it if absent.
    pub(crate) async fn ensure(&self, settings: &KafkaSettings, timeout: Duration) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = settings
            .client_config()
            .create()
            .map_err(TransportError::kafka("creating an admin client"))?;
        create_topic(&admin, &self.name, 1, timeout).await
    }

    /// A consumer that follows the topic from `from` (its first record: `Offset::Beginning`)
    /// as records are published, fetching with the followers' short wait; `group` names it
    /// (`<prefix>.<group>`), never joined. Creates the topic if it does not exist.
    pub(crate) async fn follower(
        &self,
        settings: &KafkaSettings,
        group: &str,
        from: Offset,
        timeout: Duration,
    ) -> Result<rdkafka::consumer::StreamConsumer<ReaderContext>> {
        self.ensure(settings, timeout).await?;
        let consumer: rdkafka::consumer::StreamConsumer<ReaderContext> = settings
            .reader_config(&format!("{}.{group}", settings.topic_prefix))
            .create_with_context(ReaderContext)
            .map_err(TransportError::kafka(format!(
                "creating the {} follower",
                self.records
            )))?;
        let assigning = || TransportError::kafka(format!("assigning the {} topic", self.records));
        let mut partition = TopicPartitionList::new();
        partition
            .add_partition_offset(&self.name, 0, from)
            .map_err(assigning())?;
        consumer.assign(&partition).map_err(assigning())?;
        Ok(consumer)
    }

    /// What `find` finds in the topic's tail, read in growing windows: the last `window`
    /// records, then four times as many, and so on until `find` finds it or the whole topic
    /// was read. One consumer reads every window; the topic is created if it does not exist.
    pub(crate) async fn find_in_tail<T: Send + 'static>(
        &self,
        settings: &KafkaSettings,
        window: i64,
        timeout: Duration,
        find: impl Fn(&[Record]) -> Option<T> + Send + 'static,
    ) -> Result<Option<T>> {
        self.ensure(settings, timeout).await?;
        let (topic, settings) = (self.clone(), settings.clone());
        tokio::task::spawn_blocking(move || {
            let consumer = topic.tail_consumer(&settings)?;
            let name = &topic.name;
            // The high watermark is one past the last record (on tansu, the last batch's first
            // offset: never more than the end).
            let (low, end) = consumer
                .fetch_watermarks(name, 0, timeout)
                .map_err(TransportError::kafka(format!("reading {name}'s end")))?;
            let mut window = window.max(1);
            loop {
                let from = end.saturating_sub(window);
                let whole = from <= low;
                let records = if low >= end {
                    Vec::new()
                } else {
                    topic.read_with(&consumer, (!whole).then_some(from), None, timeout)?
                };
                let found = find(&records);
                if found.is_some() || whole {
                    return Ok(found);
                }
                window = window.saturating_mul(4);
            }
        })
        .await
        .map_err(|_| TransportError::Stopped("the tail reader"))?
    }

    /// A consumer for reading the topic up to its end: it reports the end of the partition,
    /// and fetches with the followers' short wait (at the end, the broker would otherwise hold
    /// the last fetch for half a second before the end is reported). Its group,
    /// `<topic>-tail` (`shop.roots-tail`), is never joined.
    fn tail_consumer(&self, settings: &KafkaSettings) -> Result<BaseConsumer<ReaderContext>> {
        settings
            .reader_config(&format!("{}-tail", self.name))
            .set("enable.partition.eof", "true")
            .create_with_context(ReaderContext)
            .map_err(TransportError::kafka(format!(
                "creating the {} reader",
                self.records
            )))
    }

    /// The records from offset `from` (`None`: the first) in offset order, up to where `until`
    /// says, creating the topic if it does not exist. Each poll waits at most `timeout`; one
    /// that brings nothing is an error naming the topic.
    pub(crate) async fn read(
        &self,
        settings: &KafkaSettings,
        from: Option<i64>,
        until: Until,
        timeout: Duration,
    ) -> Result<Vec<Record>> {
        self.ensure(settings, timeout).await?;
        let (topic, settings) = (self.clone(), settings.clone());
        tokio::task::spawn_blocking(move || topic.read_blocking(&settings, from, until, timeout))
            .await
            .map_err(|_| TransportError::Kafka {
                operation: format!("reading the {} topic (the reader stopped)", self.records),
                source: KafkaError::Canceled,
            })?
    }

    fn read_blocking(
        &self,
        settings: &KafkaSettings,
        from: Option<i64>,
        until: Until,
        timeout: Duration,
    ) -> Result<Vec<Record>> {
        let topic = self.name.as_str();
        let consumer = self.tail_consumer(settings)?;
        let mut high = None;
        if from.is_some() || until == Until::HighWatermark {
            let (low, end) = consumer
                .fetch_watermarks(topic, 0, timeout)
                .map_err(TransportError::kafka(format!("reading {topic}'s end")))?;
            if from.unwrap_or(low) >= end {
                return Ok(Vec::new());
            }
            high = (until == Until::HighWatermark).then_some(end);
        }
        self.read_with(&consumer, from, high, timeout)
    }

    /// Reads with `consumer` from offset `from` (`None`: the first) to the end of the
    /// partition, or to offset `high` (exclusive) when given. The topic must hold a record
    /// from `from` on.
    fn read_with(
        &self,
        consumer: &BaseConsumer<ReaderContext>,
        from: Option<i64>,
        high: Option<i64>,
        timeout: Duration,
    ) -> Result<Vec<Record>> {
        let topic = self.name.as_str();
        let assigning = || TransportError::kafka(format!("assigning the {} topic", self.records));
        let mut partition = TopicPartitionList::new();
        partition
            .add_partition_offset(topic, 0, from.map_or(Offset::Beginning, Offset::Offset))
            .map_err(assigning())?;
        consumer.assign(&partition).map_err(assigning())?;
        let mut records = Vec::new();
        loop {
            let message = match consumer.poll(timeout) {
                None => {
                    return Err(TransportError::Timeout {
                        operation: format!("reading {topic} to its end"),
                        seconds: timeout.as_secs(),
                    });
                }
                Some(Err(KafkaError::PartitionEOF(_))) => return Ok(records),
                Some(Err(err)) => {
                    return Err(TransportError::kafka(format!("reading {topic}"))(err));
                }
                Some(Ok(message)) => message,
            };
            let offset = message.offset();
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            let value = message.payload().unwrap_or_default().to_vec();
            records.push((offset, key, value));
            if high.is_some_and(|high| offset + 1 >= high) {
                return Ok(records);
            }
        }
    }
}

/// Writes JSON records keyed by string to partition 0 of a [`Topic`]: idempotent, `acks=all`,
/// in the order given.
///
/// [`TopicWriter::publish`] only queues; a record is durable once [`TopicWriter::flush`]
/// returned (every 1000 queued records, `publish` flushes on its own). The writer does not
/// create the topic.
pub(crate) struct TopicWriter {
    producer: FutureProducer,
    topic: Topic,
    in_flight: Vec<DeliveryFuture>,
}

impl std::fmt::Debug for TopicWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicWriter")
            .field("topic", &self.topic.name)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl TopicWriter {
    /// A writer for `topic`.
    pub(crate) fn new(settings: &KafkaSettings, topic: Topic) -> Result<TopicWriter> {
        let producer = settings
            .producer_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "0")
            .create()
            .map_err(TransportError::kafka(format!(
                "creating the {} producer",
                topic.records
            )))?;
        Ok(TopicWriter {
            producer,
            topic,
            in_flight: Vec::new(),
        })
    }

    /// Queues one record; a refusal is an error naming `operation`.
    pub(crate) async fn publish(
        &mut self,
        key: &str,
        json: &str,
        operation: impl FnOnce() -> String,
    ) -> Result<()> {
        let out = FutureRecord::to(&self.topic.name)
            .partition(0)
            .key(key)
            .payload(json);
        let delivery = crate::kafka::send(&self.producer, out, operation).await?;
        self.in_flight.push(delivery);
        if self.in_flight.len() >= 1000 {
            self.flush().await?;
        }
        Ok(())
    }

    /// Waits until the broker acknowledged every record queued.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        crate::kafka::delivered(&mut self.in_flight, self.topic.a_record).await
    }
}
