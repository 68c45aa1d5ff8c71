//! `type: stdout`: one line per event on standard output (or standard error), for trying a
//! pipeline and for debugging. A batch counts as delivered once it is written and flushed.

mod config;
#[cfg(test)]
mod tests;

use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;

pub use config::{StdoutConfig, Stream};

use crate::event::Batch;
use crate::sinks::{Sink, SinkContext, SinkSettings, Written};

impl SinkSettings for StdoutConfig {
    fn build(&self, _ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(StdoutSink { config: self.clone() }))
    }
}

pub struct StdoutSink {
    config: StdoutConfig,
}

impl StdoutSink {
    /// The lines a write of `batches` produces.
    fn encode(&self, batches: &[Batch]) -> Vec<u8> {
        let mut out = Vec::new();
        for event in batches.iter().flat_map(|b| b.iter()) {
            self.config.format.encode_line(event, &mut out);
        }
        out
    }
}

impl Sink for StdoutSink {
    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
        let bytes = self.encode(batches);
        let stream = self.config.stream;
        Box::pin(async move {
            match stream {
                Stream::Stdout => {
                    let mut out = tokio::io::stdout();
                    out.write_all(&bytes).await?;
                    out.flush().await?;
                }
                Stream::Stderr => {
                    let mut out = tokio::io::stderr();
                    out.write_all(&bytes).await?;
                    out.flush().await?;
                }
            }
            Ok(Written::default())
        })
    }
}
