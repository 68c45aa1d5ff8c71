//! `sluice pull`: one source of one tenant, once — or, with `--dry-run`, a preview of what it
//! would collect: the requests it sends and the first records of each data set.

use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::EXIT_INVALID_CONFIG;
use crate::config::Config;
use crate::pipeline::Emitter;
use crate::sources::SourceContext;
use crate::store::Store;
use crate::usage::UsageMeter;

pub struct Request {
    pub config: PathBuf,
    pub tenant: String,
    pub source: String,
    pub dataset: Option<String>,
    pub dry_run: bool,
    pub records: usize,
}

pub async fn pull(request: Request) -> ExitCode {
    let mut config = match Config::load(&request.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let Some(tenant) = config.tenants.iter_mut().find(|t| t.name == request.tenant) else {
        eprintln!("pull: no tenant `{}` in {}", request.tenant, request.config.display());
        return ExitCode::from(EXIT_INVALID_CONFIG);
    };
    tenant.sources.retain(|s| s.name == request.source);
    let Some(source) = tenant.sources.first().cloned() else {
        eprintln!("pull: tenant `{}` has no source `{}`", request.tenant, request.source);
        return ExitCode::from(EXIT_INVALID_CONFIG);
    };
    if !request.dry_run {
        if request.dataset.is_some() {
            eprintln!("pull: --dataset only applies with --dry-run");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
        config.tenants.retain(|t| t.name == request.tenant);
        return match super::collect::run(config, 1).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("pull: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // The preview reads the saved position of a stream but writes nothing.
    let store = match Store::open(&config.state_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pull: cannot open the store: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = SourceContext {
        tenant: request.tenant.as_str().into(),
        source: request.source.as_str().into(),
        store,
        emitter: Emitter::new(Default::default(), Vec::new(), UsageMeter::new()),
        cancel: CancellationToken::new(),
    };
    let Some(preview) = source.settings.preview(ctx, request.dataset, request.records) else {
        eprintln!("pull: source `{}` does not pull from an API", request.source);
        return ExitCode::from(EXIT_INVALID_CONFIG);
    };
    match preview.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pull: {}", crate::settings::redact_urls(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
