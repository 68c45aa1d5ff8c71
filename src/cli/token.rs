//! `sluice token create|list|revoke`: the REST API's bearer tokens, kept hashed in the store.

use std::process::ExitCode;

use super::{EXIT_INVALID_CONFIG, TokenAction};
use crate::api::auth::{self, Role};
use crate::config::Config;

pub async fn token(action: TokenAction) -> ExitCode {
    let path = match &action {
        TokenAction::Create { config, .. } | TokenAction::List { config } | TokenAction::Revoke { config, .. } => config.clone(),
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let result: anyhow::Result<ExitCode> = async {
        let store = crate::store::Store::open(&config.state_dir)?;
        match action {
            TokenAction::Create { role, tenant, name, .. } => {
                let Some(role) = Role::parse(&role) else {
                    eprintln!("role `{role}`: use admin, reader or ingest");
                    return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
                };
                if let Some(t) = &tenant {
                    if let Err(e) = crate::names::validate(t) {
                        eprintln!("tenant: {e}");
                        return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
                    }
                    if !config.tenants.iter().any(|c| c.name == *t) {
                        eprintln!("note: tenant `{t}` is not in {} (yet)", path.display());
                    }
                }
                let (token, new) = auth::create(&store, role, tenant.as_deref(), &name).await?;
                eprintln!(
                    "token {} ({}, tenant {}): keep it now, it is not shown again",
                    new.id,
                    role.as_str(),
                    tenant.as_deref().unwrap_or("*")
                );
                println!("{token}");
            }
            TokenAction::List { .. } => {
                println!("{:<10} {:<8} {:<20} {:<25} {:<25} NAME", "ID", "ROLE", "TENANT", "CREATED", "REVOKED");
                for t in store.tokens(None).await? {
                    println!(
                        "{:<10} {:<8} {:<20} {:<25} {:<25} {}",
                        t.id,
                        t.role,
                        t.tenant.as_deref().unwrap_or("*"),
                        t.created_at,
                        t.revoked_at.as_deref().unwrap_or("-"),
                        t.name
                    );
                }
            }
            TokenAction::Revoke { id, .. } => {
                if !store.revoke_token(&id, None).await? {
                    eprintln!("no live token with id `{id}`");
                    return Ok(ExitCode::FAILURE);
                }
                println!("revoked {id}");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    result.unwrap_or_else(|e| {
        eprintln!("{e:#}");
        ExitCode::FAILURE
    })
}
