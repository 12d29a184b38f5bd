//! Secrets from Secrets Manager, read once per cold start. A function is
//! given `<NAME>_SECRET_ID` (and, to pin a version, `<NAME>_SECRET_VERSION`)
//! for each secret setting it needs, never the value; it reads all of them
//! concurrently before it builds its settings. Its policy grants exactly those.

use std::collections::BTreeMap;

use crate::config::SECRET_SETTINGS;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{name}: could not read secret {secret_id}: {detail}")]
    Fetch {
        name: &'static str,
        secret_id: String,
        detail: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{name}: secret {secret_id} holds no SecretString")]
    NoString {
        name: &'static str,
        secret_id: String,
    },
}

/// The variable naming the secret that holds setting `name`.
pub fn secret_id_var(name: &str) -> String {
    format!("{name}_SECRET_ID")
}

/// The variable pinning that secret's version.
pub fn secret_version_var(name: &str) -> String {
    format!("{name}_SECRET_VERSION")
}

/// The setting's value from a `SecretString`. The template stores each as
/// `{"value": "…"}` (an empty parameter still makes a valid secret); any other
/// string is the value itself.
pub fn value_of(secret_string: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(secret_string) {
        Ok(serde_json::Value::Object(map)) => match map.get("value") {
            Some(serde_json::Value::String(value)) => value.clone(),
            _ => secret_string.to_string(),
        },
        _ => secret_string.to_string(),
    }
}

/// The `SecretString` the template and the local stack write for `value`.
pub fn secret_string(value: &str) -> String {
    serde_json::json!({ "value": value }).to_string()
}

/// Reads every secret setting whose `<NAME>_SECRET_ID` `env` gives, all at
/// once. Empty values are left out, as an empty variable would be.
pub async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<BTreeMap<&'static str, String>, SecretsError> {
    let reads = SECRET_SETTINGS.iter().filter_map(|&name| {
        let secret_id = env(&secret_id_var(name))?;
        let version = env(&secret_version_var(name));
        Some(async move {
            let out = client
                .get_secret_value()
                .secret_id(&secret_id)
                .set_version_id(version)
                .send()
                .await
                .map_err(|e| SecretsError::Fetch {
                    name,
                    secret_id: secret_id.clone(),
                    detail: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                    source: Box::new(e),
                })?;
            let raw = out.secret_string().ok_or_else(|| SecretsError::NoString {
                name,
                secret_id: secret_id.clone(),
            })?;
            Ok::<_, SecretsError>((name, value_of(raw)))
        })
    });
    let values = futures::future::try_join_all(reads).await?;
    Ok(values
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_wrapper() {
        for value in ["whsec_a,whsec_b", "", "sk_test_x", "k:seed,k2:seed2"] {
            assert_eq!(value_of(&secret_string(value)), value);
        }
        assert_eq!(value_of("plain-value"), "plain-value");
        assert_eq!(value_of("{\"other\":1}"), "{\"other\":1}");
    }

    #[test]
    fn variable_names() {
        assert_eq!(
            secret_id_var("STRIPE_SECRET_KEY"),
            "STRIPE_SECRET_KEY_SECRET_ID"
        );
        assert_eq!(
            secret_version_var("SESSION_SIGNING_KEYS"),
            "SESSION_SIGNING_KEYS_SECRET_VERSION"
        );
    }
}
