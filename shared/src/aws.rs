//! AWS SDK clients, built once per cold start. `AWS_ENDPOINT_URL` (honoured by
//! aws-config) points them at the local emulator.

use aws_config::{BehaviorVersion, SdkConfig};

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ses: aws_sdk_sesv2::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            ses: aws_sdk_sesv2::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
        }
    }

    pub async fn from_env() -> Self {
        Self::new(&aws_config::defaults(BehaviorVersion::latest()).load().await)
    }

    /// Clients for an explicit endpoint (tests and the local stack).
    pub async fn for_endpoint(endpoint: &str, region: &str) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "gatehouse-local",
            ))
            .load()
            .await;
        Self::new(&config)
    }
}

/// Counts DynamoDB requests by operation: the bench and the round-trip tests
/// use it to measure round trips per event.
#[derive(Clone, Debug, Default)]
pub struct RoundTripCounter {
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RoundTripCounter {
    /// Operations seen since the last call, then forgets them.
    pub fn take(&self) -> Vec<String> {
        match self.calls.lock() {
            Ok(mut calls) => std::mem::take(&mut *calls),
            Err(_) => Vec::new(),
        }
    }

    /// A DynamoDB client that reports every request to this counter.
    pub fn instrument(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        let config = client
            .config()
            .to_builder()
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

impl aws_sdk_dynamodb::config::Intercept for RoundTripCounter {
    fn name(&self) -> &'static str {
        "RoundTripCounter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_string();
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(target);
        }
        Ok(())
    }
}
