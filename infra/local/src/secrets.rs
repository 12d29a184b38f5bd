//! Secrets, locally as in AWS: the stack writes every secret setting into
//! moto's Secrets Manager, and each function reads the ones its template
//! environment names (`<NAME>_SECRET_ID`), through its own policy-checked
//! client, with the code Lambda runs (`gatehouse::secrets::fetch`). A function
//! the template does not give a secret does not have it here either.

use std::collections::BTreeMap;

use gatehouse::config::{Settings, SECRET_SETTINGS};
use gatehouse::secrets::{secret_id_var, secret_string};
use serde_yaml::Value;

use crate::iam::ArnContext;
use crate::template::{SamTemplate, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum LocalSecretsError {
    #[error("could not create secret {name}: {detail}")]
    Create { name: String, detail: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{binary}: {source}")]
    Fetch {
        binary: String,
        #[source]
        source: gatehouse::secrets::SecretsError,
    },
    #[error("SESSION_SIGNING_KEYS: {0}")]
    SessionKeys(#[source] gatehouse::session::SessionKeyError),
    #[error("{binary}: {source}")]
    Settings {
        binary: String,
        #[source]
        source: gatehouse::config::ConfigError,
    },
}

/// One seeded secret: its ARN and the version written.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub arn: String,
    pub version: String,
}

/// Writes every secret setting of `settings` (empty where unset, as the
/// template's wrapper does) as `<prefix>/<NAME>`.
pub async fn seed(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    settings: &Settings,
) -> Result<BTreeMap<&'static str, Seeded>, LocalSecretsError> {
    let values: BTreeMap<&str, String> = settings.secret_values().into_iter().collect();
    let mut seeded = BTreeMap::new();
    for name in SECRET_SETTINGS {
        let secret_name = format!("{prefix}/{name}");
        let value = values.get(name).cloned().unwrap_or_default();
        let created = client
            .create_secret()
            .name(&secret_name)
            .secret_string(secret_string(&value))
            .send()
            .await;
        let failed = |detail: String| LocalSecretsError::Create {
            name: secret_name.clone(),
            detail,
        };
        let (arn, version) = match created {
            Ok(out) => (
                out.arn().unwrap_or_default().to_string(),
                out.version_id().unwrap_or_default().to_string(),
            ),
            // `make dev` again on a moto that kept the last run's secrets.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|err| err.is_resource_exists_exception()) =>
            {
                let out = client
                    .put_secret_value()
                    .secret_id(&secret_name)
                    .secret_string(secret_string(&value))
                    .send()
                    .await
                    .map_err(|e| {
                        failed(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())
                    })?;
                (
                    out.arn().unwrap_or_default().to_string(),
                    out.version_id().unwrap_or_default().to_string(),
                )
            }
            Err(e) => {
                return Err(failed(
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                ))
            }
        };
        seeded.insert(name, Seeded { arn, version });
    }
    Ok(seeded)
}

/// A function's environment as the template gives it: `Globals`, then its own.
pub fn environment(template: &SamTemplate, binary: &str) -> BTreeMap<String, Value> {
    let variables = |node: Option<&Value>| -> Vec<(String, Value)> {
        node.and_then(|n| n.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone())))
            .collect()
    };
    let globals = template.raw.get("Globals").and_then(|g| g.get("Function"));
    let own = template
        .functions
        .iter()
        .find(|f| f.binary == binary)
        .and_then(|f| {
            template
                .raw
                .get("Resources")
                .and_then(|r| r.get(f.logical_id.as_str()))
                .and_then(|r| r.get("Properties"))
        });
    variables(globals)
        .into_iter()
        .chain(variables(own))
        .collect()
}

/// Points the template's references at the seeded secrets: each
/// `<NAME>_SECRET_ID: !Ref X` makes `X` (a secret resource or a parameter)
/// the ARN of NAME's secret, and `<NAME>_SECRET_VERSION: !Ref P` its version.
pub fn register(
    template: &SamTemplate,
    seeded: &BTreeMap<&'static str, Seeded>,
    ctx: &mut ArnContext,
) {
    let parameters: Vec<String> = template
        .raw
        .get("Parameters")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.as_str().map(str::to_string))
        .collect();
    for function in &template.functions {
        for (var, value) in environment(template, &function.binary) {
            let Value::Tagged(tagged) = &value else {
                continue;
            };
            let Some(target) = tagged.value.as_str().filter(|_| tagged.tag == "!Ref") else {
                continue;
            };
            for (name, secret) in seeded {
                let given = if var == secret_id_var(name) {
                    &secret.arn
                } else if var == gatehouse::secrets::secret_version_var(name) {
                    &secret.version
                } else {
                    continue;
                };
                if parameters.iter().any(|p| p == target) {
                    ctx.parameters.insert(target.to_string(), given.clone());
                } else {
                    ctx.refs.insert(target.to_string(), given.clone());
                }
            }
        }
    }
}

/// The `<NAME>_SECRET_ID` / `<NAME>_SECRET_VERSION` variables `binary` gets,
/// resolved to the seeded secrets: what its Lambda environment would hold.
pub fn secret_env(
    template: &SamTemplate,
    binary: &str,
    ctx: &ArnContext,
) -> Result<BTreeMap<String, String>, LocalSecretsError> {
    let mut env = BTreeMap::new();
    for (var, value) in environment(template, binary) {
        let is_secret_var = SECRET_SETTINGS.iter().any(|name| {
            var == secret_id_var(name) || var == gatehouse::secrets::secret_version_var(name)
        });
        if is_secret_var {
            env.insert(var, ctx.resolve(&value)?);
        }
    }
    Ok(env)
}

/// `base` with exactly the secrets `binary` reads, read as it reads them:
/// through `client` (its own, policy-checked) from the ids its environment names.
pub async fn settings_for(
    template: &SamTemplate,
    binary: &str,
    ctx: &ArnContext,
    base: &Settings,
    client: &aws_sdk_secretsmanager::Client,
) -> Result<Settings, LocalSecretsError> {
    let env = secret_env(template, binary, ctx)?;
    let fetched = gatehouse::secrets::fetch(client, &|var| env.get(var).cloned())
        .await
        .map_err(|source| LocalSecretsError::Fetch {
            binary: binary.to_string(),
            source,
        })?;
    let mut settings = base.clone();
    settings
        .set_secrets(&|name| fetched.get(name).cloned())
        .map_err(|source| LocalSecretsError::Settings {
            binary: binary.to_string(),
            source,
        })?;
    Ok(settings)
}

/// `SESSION_PUBLIC_KEYS` as an operator derives it from the seeds
/// (`gatehouse-local session-public-keys`): the stack gives it to the
/// functions that only verify or publish sessions.
pub fn session_public_keys(settings: &Settings) -> Result<Option<String>, LocalSecretsError> {
    settings
        .session_signing_keys
        .as_ref()
        .map(|seeds| {
            gatehouse::session::SessionKeys::parse(
                seeds,
                &settings.session_issuer,
                &settings.session_audience,
                chrono::Duration::hours(1),
            )
            .map(|keys| keys.public_list())
        })
        .transpose()
        .map_err(LocalSecretsError::SessionKeys)
}
