//! The replicated log: a NATS JetStream stream that several `musterd`
//! replicas append to and follow (`musterd --log nats://... --stream NAME`).
//!
//! One stream message is one append: the log records of a group of
//! commands and their request records, encoded as the embedded store
//! encodes them. Every append carries the stream sequence its writer
//! decided at (`Nats-Expected-Last-Sequence`): JetStream refuses it if any
//! server appended since, so the stream has one logical writer without a
//! leader election of ours, and the refused writer follows and decides
//! again. JetStream acknowledges a publish once a quorum of the stream's
//! replicas (Raft, file storage) holds it: that is what "acknowledged"
//! means here.
//!
//! Each replica keeps a local copy of the stream in an embedded store
//! (sled, in its data directory): the records, the request records and
//! snapshots, written without `fdatasync` (the stream is the truth; the
//! copy records the stream position it holds and resumes from there after
//! a crash). Every read is served from the copy, except the records before
//! the snapshot a new replica joined from, which are read from the stream.
//! Snapshots go to the local copy and to an object store bucket beside the
//! stream (`<stream>-snapshots`), which a new replica starts from.
//!
//! The client runs on a small tokio runtime of its own: the engine calls
//! the store from its own threads and blocks on a channel for the answer;
//! the store's futures never run on the caller's runtime.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, object_store, stream};
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{decode, encode, Append, Followed, RequestKey, RequestRecord, SledStore, SnapshotMark, Store, StoreError};
use crate::domain::{LogRecord, State, Timestamp};

/// How to reach the replicated log.
#[derive(Clone, Debug)]
pub struct JetStreamConfig {
    /// NATS servers, `nats://HOST:PORT` (or `tls://`), any of the cluster's.
    pub servers: Vec<String>,
    /// The stream (one per jurisdiction): letters, digits, `-` and `_`.
    pub stream: String,
    /// A NATS credentials file (JWT and NKey seed), if the cluster asks for one.
    pub credentials: Option<PathBuf>,
    /// The authority that signed the NATS servers' certificates (PEM):
    /// given, the connection must use TLS.
    pub ca: Option<PathBuf>,
    /// How many NATS servers hold the stream when this replica creates it
    /// (3: one may be lost; a stream that exists keeps its own setting).
    pub replicas: usize,
}

/// The header naming the last record sequence after a message: the records
/// of a message are found by it without decoding the message.
const LAST_RECORD_HEADER: &str = "Muster-Last-Record";
/// How long one call to the replicated log may take before the store calls
/// it unavailable. A quorum write on a healthy cluster takes milliseconds;
/// a leader election after a lost node takes seconds.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request to JetStream (an append's acknowledgement among
/// them) may take. Short: a publish sent just before its server died is
/// never acknowledged, and the writer waits for nothing else meanwhile;
/// refused after this, the command is retried by its client (with its
/// `request_id`) and the writer, told the stream moved, follows.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// An append larger than this waits for its acknowledgement as long as bulk
/// work does (`CALL_TIMEOUT`), not `REQUEST_TIMEOUT`.
const LARGE_APPEND: usize = 256 * 1024;
/// How long a writer waits to follow the stream up to where an append
/// conflict said it ends.
const FOLLOW_WAIT: Duration = Duration::from_secs(10);
/// How long a read of records before a joined snapshot, or a snapshot's
/// upload or download, may take.
const BULK_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a snapshot's upload to the bucket may take (it runs off the
/// writer, but a clean stop waits for the last one).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a new replica may take to read back a day of request records.
const BACKFILL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long opening waits for a cluster that has no JetStream leader yet.
const OPEN_WAIT: Duration = Duration::from_secs(60);
/// A follower that has delivered nothing for this long checks whether the
/// stream has moved on without it (a consumer lost with its server).
const FOLLOW_STALL: Duration = Duration::from_secs(2);
/// At most this many stream messages are handed to the writer at a time.
const FOLLOW_BATCHES: usize = 1_024;
/// The follower pauses while this many bytes of messages wait for the
/// writer, so a replica catching up on a long stream holds a bounded part
/// of it (at least one message, however large).
const FOLLOW_BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// Snapshots each replica keeps in the bucket: its latest and the one
/// before it (a new replica needs one; the other covers one being replaced).
const KEEP_SNAPSHOTS: usize = 2;
/// Room left in a message for its headers and JetStream's own.
const HEADER_ROOM: usize = 1_024;

/// One append as a message holds it (written borrowed, read owned: postcard
/// encodes a slice and a `Vec` alike).
#[derive(Serialize)]
struct BatchOut<'a> {
    records: &'a [LogRecord],
    requests: &'a [RequestRecord],
}

#[derive(Deserialize)]
struct Batch {
    records: Vec<LogRecord>,
    requests: Vec<RequestRecord>,
}

/// The replicated log and this replica's local copy of it.
pub struct JetStreamStore {
    copy: Arc<SledStore>,
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    context: jetstream::Context,
    stream: String,
    subject: String,
    snapshots: object_store::ObjectStore,
    /// Stream messages from the follower task, in stream order.
    follower: Mutex<std::sync::mpsc::Receiver<(u64, Bytes)>>,
    /// The bytes of them that wait.
    buffered: Arc<AtomicUsize>,
    /// The last stream sequence the follower has received.
    received: watch::Receiver<u64>,
    /// The stream position the copy holds.
    position: Arc<AtomicU64>,
    /// The copy's last record.
    last_record: AtomicU64,
    /// The copy's first record (after the snapshot it joined from).
    first_record: u64,
    /// The largest message the NATS servers take.
    max_payload: usize,
    /// Why following stopped, once a message could not be followed.
    follow_failure: Mutex<Option<String>>,
    /// This replica's name, for its objects in the bucket.
    replica: String,
    /// A context with the longer timeout, for large appends.
    bulk: jetstream::Context,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore").field("stream", &self.stream).finish_non_exhaustive()
    }
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {error}"))
}

/// A stream or bucket name NATS takes, and that cannot reach into another
/// subject: letters, digits, `-` and `_`.
fn check_stream_name(name: &str) -> Result<(), StoreError> {
    let fine =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if fine {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!("--stream {name:?}: a stream name is 1 to 64 letters, digits, '-' or '_'")))
    }
}

impl JetStreamStore {
    /// Connects to the cluster, creates the stream and its snapshot bucket
    /// if they do not exist, opens the local copy in `dir` (starting a new
    /// one from the bucket's latest snapshot) and follows the stream to its
    /// end before returning.
    pub fn open(dir: &Path, config: &JetStreamConfig) -> Result<JetStreamStore, StoreError> {
        Self::open_with(dir, config, true)
    }

    /// [`JetStreamStore::open`], but a new local copy follows the stream
    /// from its first message instead of starting from a snapshot
    /// (`musterd check` reads the log itself).
    pub fn open_from_start(dir: &Path, config: &JetStreamConfig) -> Result<JetStreamStore, StoreError> {
        Self::open_with(dir, config, false)
    }

    fn open_with(dir: &Path, config: &JetStreamConfig, join: bool) -> Result<JetStreamStore, StoreError> {
        check_stream_name(&config.stream)?;
        let copy = Arc::new(SledStore::open(dir)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("muster-nats")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io { operation: "start the NATS runtime", path: String::new(), source })?;
        let handle = runtime.handle().clone();
        let subject = format!("muster.{}.log", config.stream);
        let stream_config = stream::Config {
            name: config.stream.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            num_replicas: config.replicas.max(1),
            description: Some("Muster's log: one message per append".to_owned()),
            ..Default::default()
        };
        let bucket = format!("{}-snapshots", config.stream);
        let replicas = config.replicas.max(1);
        // A cluster that is starting (no JetStream leader elected yet) or
        // electing refuses for a while: try again, up to `OPEN_WAIT`.
        let started = std::time::Instant::now();
        let (context, bulk, max_payload, snapshots, last) = loop {
            let opened = call(&handle, "opening the stream", {
                let (config, stream_config, bucket) = (config.clone(), stream_config.clone(), bucket.clone());
                async move {
                    let (context, bulk, max_payload) = connect(config).await?;
                    let (snapshots, last) = open_stream(bulk.clone(), stream_config, bucket, replicas, join).await?;
                    Ok::<_, StoreError>((context, bulk, max_payload, snapshots, last))
                }
            })
            .and_then(|opened| opened);
            match opened {
                Ok(opened) => break opened,
                Err(error @ StoreError::Refused(_)) => return Err(error),
                Err(error) if started.elapsed() < OPEN_WAIT => {
                    tracing::warn!(%error, "the stream cannot be opened yet; trying again");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(error) => return Err(error),
            }
        };
        let (mut position, mut first_record) = copy.copy_position()?;
        if position == 0 && copy.position()? > 0 {
            return Err(StoreError::Refused(format!(
                "{} holds an embedded log of {} records, not a copy of stream {}: give each replica its own empty data directory",
                dir.display(),
                copy.position()?,
                config.stream
            )));
        }
        if position > last {
            return Err(StoreError::Corrupt {
                tree: "stream",
                key: config.stream.clone(),
                reason: format!(
                    "the local copy holds position {position} but the stream ends at {last}: \
                     the stream was recreated or purged; start this replica on an empty data directory"
                ),
            });
        }
        if join && position == 0 && copy.position()? == 0 && last > 0 {
            if let Some((at, state)) = call_for(
                &handle,
                "reading the latest snapshot",
                BULK_TIMEOUT,
                latest_snapshot(context.clone(), bucket.clone(), snapshots.clone()),
            )?? {
                tracing::info!(position = at, sequence = state.last_sequence, "a new replica starts from a snapshot");
                copy.put_snapshot(&state)?;
                // The request records of the retention before the snapshot,
                // so that a retry of a request made before this replica
                // joined is still answered once. Read back before the copy
                // records where it joined: a join cut short is done again
                // in full at the next start.
                let since = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |now| now.as_secs() as i64)
                    .saturating_sub(crate::domain::limits::REQUEST_ID_RETENTION_SECONDS);
                let backfill = backfill_requests(context.clone(), config.stream.clone(), Arc::clone(&copy), since, at);
                let requests = call_for(&handle, "reading back request records", BACKFILL_TIMEOUT, backfill)??;
                tracing::info!(requests, "request records of the last day read back from the stream");
                first_record = state.last_sequence.saturating_add(1);
                copy.write_copy(&Append::default(), at, Some(first_record), state.last_sequence)?;
                copy.sync_copy()?;
                position = at;
            }
        }
        let last_record = copy.position()?.max(first_record.saturating_sub(1));
        let replica = copy.replica_id()?;
        let (sender, receiver) = std::sync::mpsc::channel();
        let buffered = Arc::new(AtomicUsize::new(0));
        let (received_sender, received) = watch::channel(position);
        let position = Arc::new(AtomicU64::new(position));
        handle.spawn(follow_stream(
            context.clone(),
            config.stream.clone(),
            subject.clone(),
            position.load(Ordering::SeqCst) + 1,
            sender,
            Arc::clone(&buffered),
            received_sender,
        ));
        handle.spawn(watch_health(context.clone(), config.stream.clone(), Arc::clone(&position)));
        let store = JetStreamStore {
            copy,
            runtime: Some(runtime),
            handle,
            context,
            stream: config.stream.clone(),
            subject,
            snapshots,
            follower: Mutex::new(receiver),
            buffered,
            received,
            position,
            last_record: AtomicU64::new(last_record),
            first_record,
            max_payload,
            follow_failure: Mutex::new(None),
            replica,
            bulk,
        };
        // Follow to where the stream ended when we looked, so the engine
        // starts from a current state.
        // A cluster that just lost or regained a server may take a while to
        // deliver: wait for it as for a leader, up to `OPEN_WAIT`.
        let catching_up = std::time::Instant::now();
        loop {
            let at = store.position.load(Ordering::SeqCst);
            if at >= last {
                break;
            }
            match store.follow(at, Some(last)) {
                Ok(_) => {}
                Err(StoreError::Unavailable(reason)) if catching_up.elapsed() < OPEN_WAIT => {
                    tracing::warn!(%reason, at, last, "still catching up with the stream");
                }
                // A message this build cannot follow: start on what came
                // before it, serving reads; the writer refuses every write
                // (the store keeps saying why).
                Err(error @ StoreError::Corrupt { .. }) if store.follow_stopped() => {
                    tracing::error!(%error, at, "this replica starts with writes refused: it cannot follow the stream");
                    break;
                }
                Err(error) => return Err(error),
            }
        }
        store.copy.sync_copy()?;
        Ok(store)
    }

    /// Runs `future` on the store's runtime and waits for it here.
    fn call<T: Send + 'static>(
        &self,
        what: &str,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        call(&self.handle, what, future)
    }

    /// Decodes stream message `sequence`, to follow position `position`: it
    /// must come next and its records must continue the copy's.
    fn check_followed(&self, position: u64, sequence: u64, payload: &[u8]) -> Result<Batch, String> {
        if sequence != position + 1 {
            return Err(format!("a gap after {position}"));
        }
        let batch: Batch = decode("stream", &sequence.to_string(), payload).map_err(|error| match error {
            StoreError::Corrupt { reason, .. } => reason,
            other => other.to_string(),
        })?;
        let next = self.last_record.load(Ordering::SeqCst) + 1;
        for (expected, record) in (next..).zip(&batch.records) {
            if record.sequence != expected {
                return Err(format!("record {} where {expected} comes next", record.sequence));
            }
        }
        Ok(batch)
    }

    /// Following has stopped at a message this build cannot take.
    fn follow_stopped(&self) -> bool {
        self.follow_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    /// The stream ends before what this replica has followed: it was
    /// recreated or purged under it. Fatal: nothing it decides could be
    /// appended in order.
    fn behind_the_copy(&self, last: u64, position: u64) -> StoreError {
        StoreError::Corrupt {
            tree: "stream",
            key: self.stream.clone(),
            reason: format!(
                "the stream ends at {last}, before the {position} messages this replica has followed: \
                 it was recreated or purged; start this replica on an empty data directory"
            ),
        }
    }

    /// Writes one append at stream `position` into the local copy.
    fn write_copy(&self, append: &Append<'_>, position: u64) -> Result<(), StoreError> {
        let last = append.records.last().map_or(self.last_record.load(Ordering::SeqCst), |record| record.sequence);
        self.copy.write_copy(append, position, None, last)?;
        self.last_record.store(last, Ordering::SeqCst);
        self.position.store(position, Ordering::SeqCst);
        metrics::gauge!("muster_log_position").set(position as f64);
        Ok(())
    }

    /// The records from `from` up to `before` (exclusive), at most `limit`,
    /// read from the stream itself: a replica that joined from a snapshot
    /// has no copy of the records before it. Finds the first message by
    /// bisection on its last-record header, then reads message by message.
    fn read_stream(&self, from: u64, before: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError> {
        let context = self.context.clone();
        let name = self.stream.clone();
        call_for(&self.handle, "reading the stream", BULK_TIMEOUT, async move {
            let mut stream = context.get_stream(&name).await.map_err(|error| unavailable("the stream", error))?;
            let state = stream.info().await.map_err(|error| unavailable("the stream's state", error))?.state.clone();
            let last_record_of = |message: &jetstream::message::StreamMessage| -> u64 {
                message.headers.get(LAST_RECORD_HEADER).and_then(|value| value.as_str().parse().ok()).unwrap_or(0)
            };
            let start = first_message_where(&stream, state.first_sequence, state.last_sequence, |message| {
                last_record_of(message) >= from
            })
            .await?;
            let mut records = Vec::new();
            let mut sequence = start;
            while records.len() < limit && sequence <= state.last_sequence {
                let message =
                    stream.get_raw_message(sequence).await.map_err(|error| unavailable("reading the stream", error))?;
                let batch: Batch = decode("stream", &sequence.to_string(), &message.payload)?;
                for record in batch.records {
                    if record.sequence >= before {
                        return Ok(records);
                    }
                    if record.sequence >= from && records.len() < limit {
                        records.push(record);
                    }
                }
                sequence += 1;
            }
            Ok(records)
        })?
    }
}

impl Drop for JetStreamStore {
    fn drop(&mut self) {
        if let Err(error) = self.copy.sync_copy() {
            tracing::warn!(%error, "syncing the local copy of the log on close failed; it resumes from the stream");
        }
        // Dropping a runtime may not block inside another one: let it go.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where the stream ends: the sequence of the last message on its subject
/// (every message is on it), read with one `STREAM.MSG.GET` request, which
/// the stream's leader answers, rather than the costlier stream info; 0 for
/// an empty stream. Not JetStream's direct get: with `allow_direct` any
/// replica answers, possibly one that is behind.
async fn stream_end(context: &jetstream::Context, name: &str, subject: &str) -> Result<u64, StoreError> {
    let stream = context.get_stream_no_info(name).await.map_err(|error| unavailable("the stream", error))?;
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => Ok(message.sequence),
        Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(error) => Err(unavailable("the stream's end", error)),
    }
}

/// Gets or creates the stream and its snapshot bucket; returns the bucket
/// and the stream's last sequence.
async fn open_stream(
    context: jetstream::Context,
    config: stream::Config,
    bucket: String,
    replicas: usize,
    create: bool,
) -> Result<(object_store::ObjectStore, u64), StoreError> {
    let name = config.name.clone();
    let mut stream = if create {
        context.get_or_create_stream(config).await.map_err(|error| unavailable("creating the stream", error))?
    } else {
        match context.get_stream(&name).await {
            Ok(stream) => stream,
            Err(error)
                if matches!(error.kind(), jetstream::context::GetStreamErrorKind::JetStream(cause)
                    if cause.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                return Err(StoreError::Refused(format!("stream {name} does not exist ({error})")));
            }
            Err(error) => return Err(unavailable("the stream", error)),
        }
    };
    let last = stream.info().await.map_err(|error| unavailable("the stream's state", error))?.state.last_sequence;
    let snapshots = match context.get_object_store(&bucket).await {
        Ok(snapshots) => snapshots,
        Err(_) if !create => return Err(StoreError::Refused(format!("bucket {bucket} does not exist"))),
        Err(_) => context
            .create_object_store(object_store::Config {
                bucket: bucket.clone(),
                description: Some("Muster's snapshots, for new replicas".to_owned()),
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|error| unavailable("creating the snapshot bucket", error))?,
    };
    Ok((snapshots, last))
}

/// Runs `future` on `handle` and waits for it on this thread (bounded).
fn call<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    what: &str,
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    call_for(handle, what, CALL_TIMEOUT + Duration::from_secs(1), future)
}

/// [`call`], waiting at most `timeout`.
fn call_for<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    what: &str,
    timeout: Duration,
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    let task = handle.spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver.recv_timeout(timeout).map_err(|error| {
        task.abort();
        match error {
            std::sync::mpsc::RecvTimeoutError::Timeout => {
                StoreError::Unavailable(format!("{what}: no answer within {} s", timeout.as_secs()))
            }
            std::sync::mpsc::RecvTimeoutError::Disconnected => {
                StoreError::Unavailable(format!("{what}: the NATS client stopped"))
            }
        }
    })
}

/// The first stream sequence in `low..high` whose message meets `holds`
/// (which must be false, then true, along the stream), by bisection; `high`
/// when none does.
async fn first_message_where(
    stream: &stream::Stream,
    mut low: u64,
    mut high: u64,
    holds: impl Fn(&jetstream::message::StreamMessage) -> bool,
) -> Result<u64, StoreError> {
    while low < high {
        let middle = low + (high - low) / 2;
        let message = stream.get_raw_message(middle).await.map_err(|error| unavailable("reading the stream", error))?;
        if holds(&message) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Ok(low)
}

/// Reads the request records of the stream's messages from the first one
/// at or after `since` (Unix seconds, found by bisection on the messages'
/// times) through `through`, into `copy`; returns how many.
async fn backfill_requests(
    context: jetstream::Context,
    name: String,
    copy: Arc<SledStore>,
    since: i64,
    through: u64,
) -> Result<usize, StoreError> {
    let mut stream = context.get_stream(&name).await.map_err(|error| unavailable("the stream", error))?;
    let first = stream.info().await.map_err(|error| unavailable("the stream's state", error))?.state.first_sequence;
    let low = first_message_where(&stream, first.max(1), through + 1, |message| message.time.unix_timestamp() >= since)
        .await?;
    if low > through {
        return Ok(0);
    }
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: low },
            ..Default::default()
        })
        .await
        .map_err(|error| unavailable("reading the stream", error))?;
    let mut messages = consumer.messages().await.map_err(|error| unavailable("reading the stream", error))?;
    let mut count = 0;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| unavailable("reading the stream", error))?;
        let sequence = message.info().map_err(|error| unavailable("reading the stream", error))?.stream_sequence;
        if sequence > through {
            break;
        }
        let batch: Batch = decode("stream", &sequence.to_string(), &message.payload)?;
        copy.write_requests(&batch.requests)?;
        count += batch.requests.len();
        if sequence == through {
            break;
        }
    }
    Ok(count)
}

/// Connects; returns a JetStream context for the log's requests (short
/// timeout), one for bulk work (large appends, snapshot chunks: a longer
/// one) and the servers' largest message.
async fn connect(config: JetStreamConfig) -> Result<(jetstream::Context, jetstream::Context, usize), StoreError> {
    let mut options = async_nats::ConnectOptions::new()
        .name("musterd")
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(REQUEST_TIMEOUT))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
                other => tracing::info!(event = %other, "NATS"),
            }
        });
    if let Some(path) = &config.credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|error| unavailable(&format!("reading the NATS credentials {}", path.display()), error))?;
    }
    if let Some(path) = &config.ca {
        options = options.add_root_certificates(path.clone()).require_tls(true);
    }
    let client = options
        .connect(config.servers.as_slice())
        .await
        .map_err(|error| unavailable(&format!("connecting to {}", config.servers.join(",")), error))?;
    let max_payload = client.server_info().max_payload;
    let mut context = jetstream::new(client.clone());
    context.set_timeout(REQUEST_TIMEOUT);
    let mut bulk = jetstream::new(client);
    bulk.set_timeout(CALL_TIMEOUT);
    Ok((context, bulk, max_payload))
}

/// The latest snapshot in the bucket and the stream position it stands at.
async fn latest_snapshot(
    context: jetstream::Context,
    name: String,
    bucket: object_store::ObjectStore,
) -> Result<Option<(u64, State)>, StoreError> {
    let mut names = snapshot_names(&context, &name).await?;
    while let Some(name) = names.pop() {
        // Another replica may remove an old snapshot as we read it: try
        // the next older one.
        let mut object = match bucket.get(&name).await {
            Ok(object) => object,
            Err(error) => {
                tracing::warn!(%name, %error, "a snapshot cannot be read; trying an older one");
                continue;
            }
        };
        let mut bytes = Vec::new();
        if let Err(error) = tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes).await {
            tracing::warn!(%name, %error, "a snapshot cannot be read; trying an older one");
            continue;
        }
        let Some((position, snapshot)) = bytes.split_at_checked(8) else { continue };
        let position = u64::from_be_bytes(position.try_into().unwrap_or_default());
        match super::decode_snapshot(0, snapshot) {
            Ok(Some(state)) => return Ok(Some((position, state))),
            Ok(None) => tracing::warn!(%name, "a snapshot of another version; trying an older one"),
            Err(error) => tracing::warn!(%name, %error, "an unreadable snapshot; trying an older one"),
        }
    }
    Ok(None)
}

/// The bucket's snapshot names, oldest first (a zero-padded sequence, then
/// the replica that wrote it), deleted ones included. Read from the
/// subjects of the bucket's stream, not with the object store's `list`:
/// that one waits for a count of messages that another replica's upload or
/// removal can make disappear, and then waits for ever (seen in the
/// cluster test).
async fn snapshot_names(context: &jetstream::Context, bucket: &str) -> Result<Vec<String>, StoreError> {
    use base64::Engine as _;
    let stream =
        context.get_stream(format!("OBJ_{bucket}")).await.map_err(|error| unavailable("the snapshot bucket", error))?;
    let prefix = format!("$O.{bucket}.M.");
    let mut subjects = stream
        .info_with_subjects(format!("{prefix}>"))
        .await
        .map_err(|error| unavailable("listing snapshots", error))?;
    let mut names = Vec::new();
    while let Some(subject) = subjects.next().await {
        let (subject, _) = subject.map_err(|error| unavailable("listing snapshots", error))?;
        let decoded = subject
            .strip_prefix(&prefix)
            .and_then(|encoded| base64::engine::general_purpose::URL_SAFE.decode(encoded).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if let Some(name) = decoded {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Removes snapshot `name` from the bucket, and the tombstone removing an
/// object leaves under its name, so that names stay few and listing stays
/// cheap.
async fn remove_snapshot(
    context: &jetstream::Context,
    bucket: &object_store::ObjectStore,
    bucket_name: &str,
    name: &str,
) -> Result<(), String> {
    use base64::Engine as _;
    bucket.delete(name).await.map_err(|error| error.to_string())?;
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(name.as_bytes());
    let stream = context.get_stream_no_info(format!("OBJ_{bucket_name}")).await.map_err(|error| error.to_string())?;
    stream.purge().filter(format!("$O.{bucket_name}.M.{encoded}")).await.map_err(|error| error.to_string())?;
    Ok(())
}

/// Follows the stream from `from`, handing each message to the writer, for
/// as long as the store lives (an ordered consumer: in order, no gap; the
/// client recreates it after a lost connection or a lost node).
async fn follow_stream(
    context: jetstream::Context,
    name: String,
    subject: String,
    mut from: u64,
    sender: std::sync::mpsc::Sender<(u64, Bytes)>,
    buffered: Arc<AtomicUsize>,
    received: watch::Sender<u64>,
) {
    loop {
        let consumer = async {
            let stream = context.get_stream(&name).await.map_err(|error| error.to_string())?;
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
                    ..Default::default()
                })
                .await
                .map_err(|error| error.to_string())?;
            consumer.messages().await.map_err(|error| error.to_string())
        };
        let mut messages = match consumer.await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, from, "cannot follow the stream yet; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let message = match tokio::time::timeout(FOLLOW_STALL, messages.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(error))) => {
                    tracing::warn!(%error, "following the stream was interrupted; resuming");
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    // Quiet: is the stream quiet too, or is the consumer
                    // stuck (its server lost, say)? Recreate it if the
                    // stream has moved past what it delivered.
                    let last = stream_end(&context, &name, &subject).await.unwrap_or(0);
                    if last >= from {
                        tracing::warn!(from, last, "the stream's follower stalled; recreating it");
                        break;
                    }
                    continue;
                }
            };
            let Ok(sequence) = message.info().map(|info| info.stream_sequence) else { continue };
            while buffered.load(Ordering::SeqCst) >= FOLLOW_BUFFER_BYTES {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            buffered.fetch_add(message.payload.len(), Ordering::SeqCst);
            if sender.send((sequence, message.payload.clone())).is_err() {
                return;
            }
            from = sequence + 1;
            received.send_replace(sequence);
        }
    }
}

/// Reports the stream's health: its replicas, its leader and how far this
/// replica lags behind it, as metrics and, when it changes, in the log.
async fn watch_health(context: jetstream::Context, name: String, position: Arc<AtomicU64>) {
    let mut last_report = String::new();
    loop {
        let report = match context.get_stream(&name).await {
            Ok(mut stream) => match stream.info().await {
                Ok(info) => {
                    let lag = info.state.last_sequence.saturating_sub(position.load(Ordering::SeqCst));
                    metrics::gauge!("muster_log_lag_messages").set(lag as f64);
                    metrics::gauge!("muster_log_stream_messages").set(info.state.messages as f64);
                    let (leader, current, total) = match &info.cluster {
                        Some(cluster) => (
                            cluster.leader.clone().unwrap_or_default(),
                            1 + cluster.replicas.iter().filter(|peer| peer.current && !peer.offline).count(),
                            1 + cluster.replicas.len(),
                        ),
                        None => (String::new(), 1, 1),
                    };
                    let leader = if leader.is_empty() { "none".to_owned() } else { leader };
                    metrics::gauge!("muster_log_replicas_current").set(current as f64);
                    format!("leader {leader}, {current} of {total} replicas current")
                }
                Err(error) => format!("unreachable ({error})"),
            },
            Err(error) => format!("unreachable ({error})"),
        };
        if report != last_report {
            if report.contains("unreachable") || report.starts_with("leader none") {
                tracing::warn!(stream = %name, health = %report, "replicated log");
            } else {
                tracing::info!(stream = %name, health = %report, "replicated log");
            }
            last_report = report;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

impl Store for JetStreamStore {
    fn append(&self, append: Append<'_>) -> Result<u64, StoreError> {
        let position = self.position.load(Ordering::SeqCst);
        if append.after != position {
            return Err(StoreError::Conflict { latest: position });
        }
        if append.records.is_empty() && append.requests.is_empty() {
            // Expired request records are forgotten by each replica for
            // itself, by the same rule: nothing to replicate.
            self.write_copy(&append, position)?;
            return Ok(position);
        }
        let key = append.records.first().map_or_else(|| "requests".to_owned(), |record| record.sequence.to_string());
        let payload = encode("stream", &key, &BatchOut { records: append.records, requests: append.requests })?;
        let limit = self.max_payload.saturating_sub(HEADER_ROOM);
        let payload_bytes = payload.len();
        if payload.len() > limit {
            return Err(StoreError::TooLarge { bytes: payload.len(), limit });
        }
        let last = append.records.last().map_or(self.last_record.load(Ordering::SeqCst), |record| record.sequence);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(LAST_RECORD_HEADER, last.to_string().as_str());
        let message = jetstream::message::PublishMessage::build()
            .payload(Bytes::from(payload))
            .headers(headers)
            .expected_last_sequence(position);
        // A large append takes longer to reach and be acknowledged by a
        // quorum across buildings: it waits as long as bulk work does.
        let context = if payload_bytes > LARGE_APPEND { self.bulk.clone() } else { self.context.clone() };
        let subject = self.subject.clone();
        let published = self.call("appending to the stream", async move {
            let acknowledgement = context.send_publish(subject, message).await?;
            acknowledgement.await
        })?;
        match published {
            Ok(acknowledgement) if acknowledgement.sequence == position + 1 => {
                self.write_copy(&append, acknowledgement.sequence)?;
                Ok(acknowledgement.sequence)
            }
            Ok(acknowledgement) => Err(StoreError::Corrupt {
                tree: "stream",
                key: acknowledgement.sequence.to_string(),
                reason: format!("acknowledged at {} after {position}", acknowledgement.sequence),
            }),
            Err(error) => match error.kind() {
                jetstream::context::PublishErrorKind::WrongLastSequence => {
                    let (context, name, subject) = (self.context.clone(), self.stream.clone(), self.subject.clone());
                    let latest = self
                        .call("reading the stream's end", async move { stream_end(&context, &name, &subject).await })
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or(position + 1);
                    if latest < position {
                        return Err(self.behind_the_copy(latest, position));
                    }
                    Err(StoreError::Conflict { latest: latest.max(position + 1) })
                }
                jetstream::context::PublishErrorKind::MaxPayloadExceeded => {
                    // The server we are connected to now takes less than
                    // the one we first met.
                    Err(StoreError::TooLarge { bytes: payload_bytes, limit })
                }
                _ => Err(unavailable("appending to the stream", error)),
            },
        }
    }

    fn position(&self) -> Result<u64, StoreError> {
        Ok(self.position.load(Ordering::SeqCst))
    }

    fn shared(&self) -> bool {
        true
    }

    fn follow(&self, after: u64, through: Option<u64>) -> Result<Vec<Followed>, StoreError> {
        let receiver = self.follower.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut failure = self.follow_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(reason) = failure.as_ref() {
            return Err(StoreError::Corrupt { tree: "stream", key: self.stream.clone(), reason: reason.clone() });
        }
        let mut position = self.position.load(Ordering::SeqCst);
        if after != position {
            return Err(StoreError::Corrupt {
                tree: "stream",
                key: after.to_string(),
                reason: format!("the writer stands at {after}, its local copy at {position}"),
            });
        }
        let deadline = std::time::Instant::now() + FOLLOW_WAIT;
        let mut followed = Vec::new();
        while followed.len() < FOLLOW_BATCHES {
            let next = match receiver.try_recv() {
                Ok(next) => Ok(next),
                Err(std::sync::mpsc::TryRecvError::Empty) => match through {
                    Some(through) if position < through => receiver
                        .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                        .map_err(|_| StoreError::Unavailable(format!("following the stream to {through} timed out"))),
                    _ => break,
                },
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    Err(StoreError::Unavailable("the stream's follower has stopped".to_owned()))
                }
            };
            let (sequence, payload) = match next {
                Ok(next) => next,
                // What was followed stands: the writer applies it first.
                Err(error) if followed.is_empty() => return Err(error),
                Err(_) => break,
            };
            self.buffered.fetch_sub(payload.len(), Ordering::SeqCst);
            if sequence <= position {
                // This replica's own append, already in the copy.
                continue;
            }
            // Checked before anything is written: a message this build
            // cannot take (a gap, another format, records that do not
            // continue the log) stops following for good, with what came
            // before it applied, rather than put it in the copy.
            let checked = self.check_followed(position, sequence, &payload);
            let batch = match checked {
                Ok(batch) => batch,
                Err(reason) => {
                    tracing::error!(sequence, %reason, "a stream message cannot be followed; this replica stops taking writes");
                    *failure = Some(format!("message {sequence}: {reason}"));
                    if followed.is_empty() {
                        return Err(StoreError::Corrupt { tree: "stream", key: sequence.to_string(), reason });
                    }
                    break;
                }
            };
            let append = Append { after: position, records: &batch.records, requests: &batch.requests, expired: &[] };
            if let Err(error) = self.write_copy(&append, sequence) {
                *failure = Some(format!("message {sequence}: {error}"));
                if followed.is_empty() {
                    return Err(error);
                }
                break;
            }
            position = sequence;
            followed.push(Followed { position, records: batch.records });
        }
        Ok(followed)
    }

    fn confirm(&self, position: u64) -> Result<(), StoreError> {
        let (context, name, subject) = (self.context.clone(), self.stream.clone(), self.subject.clone());
        let last =
            self.call("reading the stream's end", async move { stream_end(&context, &name, &subject).await })??;
        match last.cmp(&position) {
            std::cmp::Ordering::Equal => Ok(()),
            std::cmp::Ordering::Greater => Err(StoreError::Conflict { latest: last }),
            std::cmp::Ordering::Less => Err(self.behind_the_copy(last, position)),
        }
    }

    fn follow_changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.received.clone())
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError> {
        let from = from.max(1);
        if from >= self.first_record {
            return self.copy.read(from, limit);
        }
        let mut records = self.read_stream(from, self.first_record, limit)?;
        if records.len() < limit {
            records.extend(self.copy.read(self.first_record, limit - records.len())?);
        }
        Ok(records)
    }

    fn request(&self, key: &RequestKey) -> Result<Option<RequestRecord>, StoreError> {
        self.copy.request(key)
    }

    fn requests_before(&self, before: Timestamp, limit: usize) -> Result<Vec<(Timestamp, RequestKey)>, StoreError> {
        self.copy.requests_before(before, limit)
    }

    fn forget_requests_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.copy.forget_requests_before(before)
    }

    fn put_drill_run(&self, number: u64, summary: &[u8], run: &[u8]) -> Result<(), StoreError> {
        // Drill runs are this replica's own: they never touch the live log.
        self.copy.put_drill_run(number, summary, run)
    }

    fn put_snapshot(&self, state: &State) -> Result<(), StoreError> {
        self.copy.put_snapshot(state)?;
        let Some(position) = self.copy.position_of(state.last_sequence)? else {
            return Ok(());
        };
        let mut bytes = position.to_be_bytes().to_vec();
        bytes.extend(super::encode_snapshot(state)?);
        let bucket = self.snapshots.clone();
        let context = self.context.clone();
        let bucket_name = format!("{}-snapshots", self.stream);
        // Named by sequence, then by replica: replicas snapshot the same
        // sequences, and each writes and prunes only its own objects, so no
        // two ever write or delete one object at once (the object store
        // does not take that well: an upload was seen to hang).
        let name = format!("{:020}-{}", state.last_sequence, self.replica);
        let own = format!("-{}", self.replica);
        call_for(&self.handle, "writing a snapshot to the bucket", UPLOAD_TIMEOUT, async move {
            bucket
                .put(name.as_str(), &mut bytes.as_slice())
                .await
                .map_err(|error| unavailable("writing a snapshot", error))?;
            let names = snapshot_names(&context, &bucket_name).await?;
            let mine: Vec<&String> = names.iter().filter(|name| name.ends_with(&own)).collect();
            for old in mine.iter().rev().skip(KEEP_SNAPSHOTS) {
                let purged = remove_snapshot(&context, &bucket, &bucket_name, old).await;
                if let Err(error) = purged {
                    tracing::warn!(%error, name = %old, "an old snapshot could not be removed from the bucket");
                }
            }
            Ok::<_, StoreError>(())
        })?
    }

    fn snapshot_marks(&self) -> Result<Vec<SnapshotMark>, StoreError> {
        self.copy.snapshot_marks()
    }

    fn snapshot(&self, sequence: u64) -> Result<Option<State>, StoreError> {
        self.copy.snapshot(sequence)
    }

    fn drill_run(&self, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.copy.drill_run(number)
    }

    fn drill_runs(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.copy.drill_runs(after, limit)
    }
}
