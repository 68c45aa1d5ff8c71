//! `type: s3`: objects in an S3-compatible bucket.
//!
//! Events: one object per write and rendered key, NDJSON in the sink's format (optionally
//! gzip), acknowledged once the PUT succeeded: S3 has then stored it durably. Bodies above
//! [`PART_BYTES`] go as multipart uploads.
//!
//! Snapshots: the original data collectors' shape, one JSON array of the records, streamed from
//! the spool into an upload (never whole in memory) at `key` with `%UUID` = `_upload_id`. An
//! object appears whole when its upload completes, so readers never see a part of one. With
//! `backup_key`, the finished object is then copied there: the backup always holds the last
//! complete snapshot, since a failed collection never reaches the sink. [`restore_backup`]
//! fetches it back, to seed a fresh deployment's local files.

mod config;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path as LocalPath;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions,
    RetryConfig, WriteMultipart,
};

pub use config::{Compression, S3Config};

use crate::event::Batch;
use crate::settings::template::{PathTemplate, UUID_MARK};
use crate::sinks::policy::SinkPolicy;
use crate::sinks::{Sink, SinkContext, SinkSettings, Written};
use crate::snapshot::Snapshot;

/// Bodies larger than this go as multipart uploads, in parts of this size (S3 wants 5 MiB or more).
pub const PART_BYTES: usize = 8 << 20;

/// Parts uploaded at once in a multipart upload.
const PART_CONCURRENCY: usize = 2;

impl SinkSettings for S3Config {
    fn build(&self, ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(S3Sink::new(self.clone(), &ctx)?))
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.bucket.is_empty() || self.bucket.contains('/') {
            out.push(("bucket", "a bucket name, without `/`".into()));
        }
        if let Some(e) = self.endpoint.as_deref().and_then(crate::settings::url_problem) {
            out.push(("endpoint", e));
        }
        if let Err(e) = object_path(&sample(&self.key)) {
            out.push(("key", e));
        }
        if let Some(backup) = &self.backup_key {
            if let Err(e) = object_path(&sample(backup)) {
                out.push(("backup_key", e));
            } else if !names_one_object(backup) {
                out.push(("backup_key", "may only use %TAG and %TENANCY: it names the one backup of a data set".into()));
            }
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), None) => out.push(("secret_access_key", "missing; access_key_id is given".into())),
            (None, Some(_)) => out.push(("access_key_id", "missing; secret_access_key is given".into())),
            (None, None) if self.session_token.is_some() => {
                out.push(("session_token", "given without access_key_id and secret_access_key".into()))
            }
            _ => {}
        }
        if self.max_bytes == 0 {
            out.push(("max_bytes", "must be more than 0".into()));
        }
        if self.timeout.is_zero() {
            out.push(("timeout", "must be more than 0".into()));
        }
        out
    }

    fn adjust_policy(&self, policy: &mut SinkPolicy) {
        if !self.max_age.is_zero() {
            policy.batch.timeout = self.max_age;
        }
    }
}

/// `template` rendered with sample values, to check what it makes.
fn sample(template: &PathTemplate) -> String {
    let mut out = String::new();
    template.render("tenant", "tag", Utc::now(), "00000000-0000-0000-0000-000000000000", &mut out);
    out
}

/// Whether `template` renders the same for every time and UUID.
fn names_one_object(template: &PathTemplate) -> bool {
    let (mut a, mut b) = (String::new(), String::new());
    template.render("t", "g", Utc.timestamp_opt(0, 0).unwrap(), "a", &mut a);
    template.render("t", "g", Utc.timestamp_opt(1_234_567_890, 0).unwrap(), "b", &mut b);
    a == b
}

/// An object name as S3 takes it: no empty, `.` or `..` segments, no leading `/`.
fn object_path(key: &str) -> Result<Path, String> {
    if key.starts_with('/') || key.ends_with('/') {
        return Err(format!("`{key}` must not start or end with `/`"));
    }
    Path::parse(key).map_err(|e| format!("`{key}` is no usable object name: {e}"))
}

/// The client for `config`: its settings over those of the environment (`AWS_*`).
pub fn object_store(config: &S3Config, retry: &crate::sinks::policy::RetryPolicy) -> anyhow::Result<AmazonS3> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&config.bucket);
    if let Some(region) = &config.region {
        builder = builder.with_region(region);
    } else if std::env::var_os("AWS_REGION").is_none()
        && let Ok(region) = std::env::var("AWS_DEFAULT_REGION")
    {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &config.endpoint {
        let endpoint = endpoint.trim_end_matches('/');
        let endpoint = if config.path_style { endpoint.to_string() } else { virtual_hosted(endpoint, &config.bucket)? };
        builder = builder.with_endpoint(endpoint);
    }
    builder = builder.with_virtual_hosted_style_request(!config.path_style);
    if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        builder = builder.with_access_key_id(id.expose()).with_secret_access_key(secret.expose());
        if let Some(token) = &config.session_token {
            builder = builder.with_token(token.expose());
        }
    }
    // Client options replace the builder's: allow_http must be among them.
    let client = ClientOptions::new()
        .with_allow_http(config.endpoint.as_deref().is_some_and(|e| e.starts_with("http://")))
        .with_timeout(config.timeout)
        .with_connect_timeout(config.timeout.min(std::time::Duration::from_secs(10)));
    let retry = RetryConfig {
        backoff: BackoffConfig { init_backoff: retry.initial_backoff, max_backoff: retry.max_backoff, base: 2.0 },
        max_retries: retry.max_attempts.saturating_sub(1) as usize,
        retry_timeout: std::time::Duration::from_secs(60),
    };
    builder.with_client_options(client).with_retry(retry).build().map_err(|e| anyhow!("S3 settings: {e}"))
}

/// `https://host` → `https://bucket.host`: object_store expects the bucket in a virtual-hosted
/// endpoint.
fn virtual_hosted(endpoint: &str, bucket: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(endpoint).map_err(|e| anyhow!("endpoint: {e}"))?;
    let host = url.host_str().ok_or_else(|| anyhow!("endpoint names no host"))?.to_string();
    url.set_host(Some(&format!("{bucket}.{host}"))).map_err(|e| anyhow!("endpoint: {e}"))?;
    Ok(url.as_str().trim_end_matches('/').to_string())
}

pub struct S3Sink {
    name: String,
    config: S3Config,
    store: Arc<AmazonS3>,
}

impl S3Sink {
    pub fn new(config: S3Config, ctx: &SinkContext) -> anyhow::Result<Self> {
        let store = Arc::new(object_store(&config, &ctx.policy.retry)?);
        Ok(S3Sink { name: ctx.name.clone(), config, store })
    }

    fn stream_attributes(&self) -> Attributes {
        let kind = match self.config.compression {
            Compression::None => "application/x-ndjson",
            Compression::Gzip => "application/gzip",
        };
        Attributes::from_iter([(Attribute::ContentType, AttributeValue::from(kind))])
    }

    async fn write_events(&self, batches: &[Batch]) -> anyhow::Result<Written> {
        // Rendered key (with `%UUID` unresolved) → its objects' bodies, each under max_bytes.
        let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
        let mut open: HashMap<String, usize> = HashMap::new();
        let mut key = String::new();
        let mut line = Vec::new();
        let max = self.config.max_bytes as usize;
        for event in batches.iter().flat_map(|b| b.iter()) {
            key.clear();
            self.config.key.render_key(event, &mut key);
            line.clear();
            self.config.format.encode_line(event, &mut line);
            match open.get(&key) {
                Some(&i) if objects[i].1.len() + line.len() <= max || objects[i].1.is_empty() => objects[i].1.extend_from_slice(&line),
                _ => {
                    open.insert(key.clone(), objects.len());
                    objects.push((key.clone(), line.clone()));
                }
            }
        }
        for (key, body) in objects {
            let key = stream_object_name(&key, &uuid::Uuid::new_v4().to_string());
            let path = object_path(&key).map_err(|e| anyhow!("sink `{}`: {e}", self.name))?;
            let body = match self.config.compression {
                Compression::None => body,
                Compression::Gzip => gzip(&body)?,
            };
            let mut upload = Upload::new(self.store.clone(), path, self.stream_attributes());
            let written = async {
                upload.write(Bytes::from(body)).await?;
                upload.finish().await
            };
            written.await.with_context(|| format!("sink `{}`: writing s3://{}/{key}", self.name, self.config.bucket))?;
        }
        Ok(Written::default())
    }

    async fn write_array(&self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let mut key = String::new();
        self.config.key.render(&snapshot.tenant, &snapshot.tag, snapshot.taken_at, &snapshot.upload_id.to_string(), &mut key);
        let path = object_path(&key).map_err(|e| anyhow!("{e}"))?;
        let attributes = Attributes::from_iter([(Attribute::ContentType, AttributeValue::from("application/json"))]);
        let mut upload = Upload::new(self.store.clone(), path.clone(), attributes);
        // The spool is read on a blocking thread; the bounded channel keeps a few parts in memory.
        let records = snapshot.records()?;
        let (parts, mut received) = tokio::sync::mpsc::channel::<anyhow::Result<Vec<u8>>>(2);
        let reader = tokio::task::spawn_blocking(move || {
            let mut part = Vec::with_capacity(1 << 20);
            part.push(b'[');
            for (i, record) in records.enumerate() {
                match record {
                    Ok(r) => {
                        if i > 0 {
                            part.extend_from_slice(b", ");
                        }
                        part.extend_from_slice(r.get().as_bytes());
                    }
                    Err(e) => {
                        let _ = parts.blocking_send(Err(e));
                        return;
                    }
                }
                if part.len() >= 1 << 20 && parts.blocking_send(Ok(std::mem::replace(&mut part, Vec::with_capacity(1 << 20)))).is_err() {
                    return;
                }
            }
            part.push(b']');
            let _ = parts.blocking_send(Ok(part));
        });
        let result = async {
            while let Some(part) = received.recv().await {
                upload.write(Bytes::from(part?)).await?;
            }
            upload.finish().await
        }
        .await;
        drop(received);
        let _ = reader.await;
        result.with_context(|| format!("writing s3://{}/{key}", self.config.bucket))?;
        if let Some(backup) = &self.config.backup_key {
            let mut to = String::new();
            backup.render(&snapshot.tenant, &snapshot.tag, snapshot.taken_at, "", &mut to);
            let to_path = object_path(&to).map_err(|e| anyhow!("backup_key: {e}"))?;
            self.store
                .copy(&path, &to_path)
                .await
                .with_context(|| format!("copying s3://{0}/{key} to s3://{0}/{to}", self.config.bucket))?;
        }
        Ok(())
    }
}

/// A stream object's name: its key with a fresh UUID for `%UUID`; a key without `%UUID` gets
/// `-<uuid>` before the extension of its last segment, so no write replaces an earlier one.
fn stream_object_name(key: &str, uuid: &str) -> String {
    if key.contains(UUID_MARK) {
        return key.replace(UUID_MARK, uuid);
    }
    let file_start = key.rfind('/').map_or(0, |i| i + 1);
    match key[file_start..].find('.') {
        Some(dot) if dot > 0 => format!("{}-{uuid}{}", &key[..file_start + dot], &key[file_start + dot..]),
        _ => format!("{key}-{uuid}"),
    }
}

fn gzip(body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::default());
    out.write_all(body)?;
    Ok(out.finish()?)
}

/// One object being written: a single PUT when it stays under [`PART_BYTES`], else a multipart
/// upload (aborted on failure, so no parts are left behind).
struct Upload {
    store: Arc<AmazonS3>,
    path: Path,
    attributes: Attributes,
    buffer: Vec<Bytes>,
    buffered: usize,
    multipart: Option<WriteMultipart>,
}

impl Upload {
    fn new(store: Arc<AmazonS3>, path: Path, attributes: Attributes) -> Self {
        Upload { store, path, attributes, buffer: Vec::new(), buffered: 0, multipart: None }
    }

    async fn write(&mut self, bytes: Bytes) -> anyhow::Result<()> {
        self.buffered += bytes.len();
        self.buffer.push(bytes);
        if self.buffered < PART_BYTES {
            return Ok(());
        }
        if self.multipart.is_none() {
            let options = PutMultipartOptions { attributes: self.attributes.clone(), ..Default::default() };
            let upload = self.store.put_multipart_opts(&self.path, options).await?;
            self.multipart = Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES));
        }
        let multipart = self.multipart.as_mut().expect("started above");
        if let Err(e) = multipart.wait_for_capacity(PART_CONCURRENCY).await {
            let _ = self.multipart.take().expect("started").abort().await;
            return Err(e.into());
        }
        for bytes in self.buffer.drain(..) {
            multipart.put(bytes);
        }
        self.buffered = 0;
        Ok(())
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        match self.multipart.take() {
            None => {
                let payload = self.buffer.drain(..).collect();
                let options = PutOptions { attributes: self.attributes.clone(), ..Default::default() };
                self.store.put_opts(&self.path, payload, options).await?;
            }
            Some(mut multipart) => {
                for bytes in self.buffer.drain(..) {
                    multipart.put(bytes);
                }
                // `finish` aborts the upload itself when a part or the completion fails.
                multipart.finish().await?;
            }
        }
        Ok(())
    }
}

impl Drop for Upload {
    /// A write given up half-way (an error, a cancelled future) leaves no parts to pay for.
    fn drop(&mut self) {
        if let Some(multipart) = self.multipart.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = multipart.abort().await;
            });
        }
    }
}

impl Sink for S3Sink {
    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
        Box::pin(self.write_events(batches))
    }

    fn write_snapshot<'a>(&'a mut self, snapshot: &'a Snapshot) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move { self.write_array(snapshot).await.with_context(|| format!("sink `{}`", self.name)) })
    }

    /// Lists the bucket (one page at most): the endpoint answers and takes the credentials.
    fn check(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            match self.store.list(None).next().await {
                None | Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(anyhow!("listing bucket `{}`: {e}", self.config.bucket)),
            }
        })
    }
}

/// Downloads the backup of `tag` for `tenant` (the last complete snapshot, at `backup_key`) to
/// `local`, replacing it in one step; returns its size. For a fresh deployment that seeds its
/// local files from the bucket.
pub async fn restore_backup(config: &S3Config, tenant: &str, tag: &str, local: &LocalPath) -> anyhow::Result<u64> {
    let backup = config.backup_key.as_ref().ok_or_else(|| anyhow!("the sink has no backup_key"))?;
    let mut key = String::new();
    backup.render(tenant, tag, Utc::now(), "", &mut key);
    let path = object_path(&key).map_err(|e| anyhow!("backup_key: {e}"))?;
    let store = object_store(config, &Default::default())?;
    let mut body = store.get(&path).await.with_context(|| format!("reading s3://{}/{key}", config.bucket))?.into_stream();
    let dir = local.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(LocalPath::new("."));
    tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
    let name = local.file_name().and_then(|n| n.to_str()).unwrap_or("backup");
    let temp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
    let copied = async {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::create(&temp).await?;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        tokio::fs::rename(&temp, local).await?;
        Ok::<_, anyhow::Error>(size)
    }
    .await;
    if copied.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    copied.with_context(|| format!("restoring s3://{}/{key} to {}", config.bucket, local.display()))
}
