//! Starts the whole local stack in one process: resources on moto from the
//! template, every HTTP function on its route, the SQS -> sender pump and the
//! sweeper's schedule.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use completions_digest::CompletionsDigest;
use email_sender::EmailSender;
use gatehouse::aws::AwsClients;
use gatehouse::config::Settings;
use gatehouse::lambda::HttpFunction;
use gatehouse::service::{Clock, Services};
use outbox_sweeper::OutboxSweeper;
use subscription_sweeper::SubscriptionSweeper;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bootstrap::{bootstrap, BootstrapError, ResourceNames};
use crate::server::{router, RouteTable};
use crate::template::{rate_seconds, SamTemplate, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error("settings: {0}")]
    Settings(String),
    #[error("the template routes {route} to {binary}, which the local stack does not know")]
    UnknownFunction { route: String, binary: String },
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::LocalSecretsError),
}

pub struct StackConfig {
    pub endpoint: String,
    pub region: String,
    pub names: ResourceNames,
    pub settings: Settings,
    pub addr: SocketAddr,
    pub template_path: PathBuf,
    /// Run the SQS -> email-sender pump (tests may drive it by hand instead).
    pub run_email_pump: bool,
    /// Run the sweeper on this interval instead of the template's rate.
    pub sweep_every: Option<Duration>,
    pub run_schedules: bool,
    pub clock: Option<Clock>,
    /// Point `FRONTEND_URL` at this server and `APP_URL` at its `/account/me`
    /// once the port is known (tests on ephemeral ports open real setup links).
    pub urls_from_listener: bool,
    /// The dev credentials the local stack verifies SigV4 against (admin routes).
    pub admin: Option<crate::sigv4::AdminCredentials>,
    /// Where the functions' own AWS clients send their calls, when not
    /// `endpoint`: a fault-injecting proxy in front of moto, in tests.
    pub function_endpoint: Option<String>,
}

impl StackConfig {
    /// From the environment (`infra/local.env` loaded first by the binary).
    pub fn from_env() -> Result<Self, StackError> {
        let var =
            |k: &str| std::env::var(k).map_err(|_| StackError::Settings(format!("{k} is not set")));
        let settings = Settings::from_env().map_err(|e| StackError::Settings(e.to_string()))?;
        let addr: SocketAddr = var("GATEHOUSE_ADDR")?
            .parse()
            .map_err(|e| StackError::Settings(format!("GATEHOUSE_ADDR: {e}")))?;
        Ok(Self {
            endpoint: var("AWS_ENDPOINT_URL")?,
            region: var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            names: ResourceNames {
                table: settings.table_name.clone(),
                queue: var("EMAIL_QUEUE_NAME")?,
                dlq: var("EMAIL_DLQ_NAME")?,
                visibility_timeout_override: None,
            },
            settings,
            addr,
            template_path: crate::env::workspace_root().join("infra/template.yaml"),
            run_email_pump: true,
            sweep_every: std::env::var("SWEEP_INTERVAL_SECS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs),
            run_schedules: true,
            clock: None,
            urls_from_listener: false,
            admin: admin_credentials_from_env(),
            function_endpoint: None,
        })
    }
}

/// `ADMIN_ACCESS_KEY_ID`, `ADMIN_SECRET_ACCESS_KEY` and `ADMIN_PRINCIPAL_ARN`
/// from `infra/local.env`; without them admin routes answer 403.
pub fn admin_credentials_from_env() -> Option<crate::sigv4::AdminCredentials> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    Some(crate::sigv4::AdminCredentials {
        access_key_id: var("ADMIN_ACCESS_KEY_ID")?,
        secret_access_key: gatehouse::config::Secret::new(var("ADMIN_SECRET_ACCESS_KEY")?),
        principal_arn: var("ADMIN_PRINCIPAL_ARN")?,
        region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
    })
}

pub struct LocalStack {
    pub addr: SocketAddr,
    pub services: Services,
    pub clients: AwsClients,
    pub queue_url: String,
    pub dlq_url: String,
    pub endpoint: String,
    pub sender: Arc<EmailSender>,
    pub sweeper: Arc<OutboxSweeper>,
    pub expiry: Arc<SubscriptionSweeper>,
    pub digest: Arc<CompletionsDigest>,
    pub routes: Vec<crate::template::Route>,
    /// Every AWS call the functions made, as their policies judged it.
    pub iam: crate::iam::CallLog,
    /// Each function's services, by binary.
    functions: BTreeMap<String, Services>,
    /// Each function's secret variables (`<NAME>_SECRET_ID` → seeded ARN), by binary.
    pub secret_env: BTreeMap<String, BTreeMap<String, String>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn http_function(binary: &str, services: &Services) -> Option<Arc<dyn HttpFunction>> {
    Some(match binary {
        "kajabi-webhook" => Arc::new(kajabi_webhook::KajabiWebhook::new(services.clone())),
        "stripe-webhook" => Arc::new(stripe_webhook::StripeWebhook::new(services.clone())),
        "paystack-webhook" => Arc::new(paystack_webhook::PaystackWebhook::new(services.clone())),
        "setup-password" => Arc::new(setup_password::SetupPassword::new(services.clone())),
        "resend-setup-email" => {
            Arc::new(resend_setup_email::ResendSetupEmail::new(services.clone()))
        }
        "account-login" => Arc::new(account_login::AccountLogin::new(services.clone())),
        "account-me" => Arc::new(account_me::AccountMe::new(services.clone())),
        "account-checkout" => Arc::new(account_checkout::AccountCheckout::new(services.clone())),
        "account-renewal" => Arc::new(account_renewal::AccountRenewal::new(services.clone())),
        "account-billing" => Arc::new(account_billing::AccountBilling::new(services.clone())),
        "account-notifications" => Arc::new(account_notifications::AccountNotifications::new(
            services.clone(),
        )),
        "account-pages" => Arc::new(account_pages::AccountPages::new(services.clone())),
        "checkout-return" => Arc::new(checkout_return::CheckoutReturn::new(services.clone())),
        "plans-list" => Arc::new(plans_list::PlansList::new(services.clone())),
        "jwks" => Arc::new(jwks::Jwks::new(services.clone())),
        "setup-page" => Arc::new(setup_page::SetupPage::new(services.clone())),
        "admin-list-users" => Arc::new(admin_list_users::AdminListUsers::new(services.clone())),
        "admin-get-user" => Arc::new(admin_get_user::AdminGetUser::new(services.clone())),
        "admin-list-events" => Arc::new(admin_list_events::AdminListEvents::new(services.clone())),
        "admin-list-payments" => Arc::new(admin_list_payments::AdminListPayments::new(
            services.clone(),
        )),
        "admin-get-event" => Arc::new(admin_get_event::AdminGetEvent::new(services.clone())),
        "admin-resend-setup-email" => Arc::new(
            admin_resend_setup_email::AdminResendSetupEmail::new(services.clone()),
        ),
        "admin-roles" => Arc::new(admin_roles::AdminRoles::new(services.clone())),
        "admin-points" => Arc::new(admin_points::AdminPoints::new(services.clone())),
        "admin-import-completions" => Arc::new(
            admin_import_completions::AdminImportCompletions::new(services.clone()),
        ),
        "admin-list-completions" => Arc::new(admin_list_completions::AdminListCompletions::new(
            services.clone(),
        )),
        "admin-link-completion" => Arc::new(admin_link_completion::AdminLinkCompletion::new(
            services.clone(),
        )),
        "admin-dismiss-completion" => Arc::new(
            admin_dismiss_completion::AdminDismissCompletion::new(services.clone()),
        ),
        "admin-kajabi-hooks-list" => Arc::new(admin_kajabi_hooks_list::AdminKajabiHooksList::new(
            services.clone(),
        )),
        "admin-kajabi-hook-create" => Arc::new(
            admin_kajabi_hook_create::AdminKajabiHookCreate::new(services.clone()),
        ),
        "admin-kajabi-hook-delete" => Arc::new(
            admin_kajabi_hook_delete::AdminKajabiHookDelete::new(services.clone()),
        ),
        "admin-kajabi-hooks-ensure" => Arc::new(
            admin_kajabi_hooks_ensure::AdminKajabiHooksEnsure::new(services.clone()),
        ),
        "admin-verify-subscription" => Arc::new(
            admin_verify_subscription::AdminVerifySubscription::new(services.clone()),
        ),
        "admin-sync-subscription" => Arc::new(admin_sync_subscription::AdminSyncSubscription::new(
            services.clone(),
        )),
        "admin-replay-event" => {
            Arc::new(admin_replay_event::AdminReplayEvent::new(services.clone()))
        }
        _ => return None,
    })
}

impl LocalStack {
    pub async fn start(config: StackConfig) -> Result<Self, StackError> {
        let template = SamTemplate::load(&config.template_path)?;
        let clients = AwsClients::for_endpoint(&config.endpoint, &config.region).await;
        let resources = bootstrap(
            &clients,
            &template,
            &config.names,
            &config.settings.from_email,
        )
        .await?;

        // Bound once every resource exists; nothing is served until the router starts below.
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| StackError::Bind(config.addr, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StackError::Bind(config.addr, e))?;
        let mut settings = config.settings;
        if config.urls_from_listener {
            settings.frontend_url = format!("http://{addr}");
            settings.app_url = format!("http://{addr}/account/me");
        }
        settings.table_name = resources.table.clone();
        if settings.session_public_keys.is_none() {
            settings.session_public_keys = crate::secrets::session_public_keys(&settings)?;
        }
        settings.email_queue_url = Some(resources.queue_url.clone());
        let seeded = crate::secrets::seed(&clients.secrets, &resources.table, &settings).await?;
        // The harness's own services: every setting, unchecked clients.
        let mut services = Services::new(settings.clone(), &clients)
            .await
            .map_err(|e| StackError::Settings(e.to_string()))?;
        if let Some(clock) = config.clock.clone() {
            services = services.with_clock(clock);
        }

        // Each function gets clients that hold it to its own policy (moto does not).
        let mut arns = crate::iam::ArnContext::new(&config.region);
        let (main_queue, dlq) = template.email_queues()?;
        for (logical_id, arn, reference) in [
            (
                &template.table.logical_id,
                arns.table_arn(&resources.table),
                resources.table.clone(),
            ),
            (
                &main_queue.logical_id,
                arns.queue_arn(&config.names.queue),
                resources.queue_url.clone(),
            ),
            (
                &dlq.logical_id,
                arns.queue_arn(&config.names.dlq),
                resources.dlq_url.clone(),
            ),
        ] {
            arns.arns.insert(logical_id.clone(), arn);
            // `!Ref` gives a table's name and a queue's URL, never the ARN.
            arns.refs.insert(logical_id.clone(), reference);
        }
        arns.parameters.insert(
            "FromEmail".into(),
            services.settings.from_email.as_str().to_string(),
        );
        crate::secrets::register(&template, &seeded, &mut arns);
        let enforcement = Arc::new(crate::iam::Enforcement::new(template.clone(), arns));

        // Each function starts as it does in Lambda: its own clients, and the
        // secrets its environment names, read through them.
        let function_clients = match &config.function_endpoint {
            Some(url) => AwsClients::for_endpoint(url, &config.region).await,
            None => clients.clone(),
        };
        let mut functions = BTreeMap::new();
        let mut secret_env = BTreeMap::new();
        for function in &template.functions {
            secret_env.insert(
                function.binary.clone(),
                crate::secrets::secret_env(&template, &function.binary, enforcement.context())?,
            );
            let own = enforcement.clients_for(&function.binary, &function_clients)?;
            let own_settings = crate::secrets::settings_for(
                &template,
                &function.binary,
                enforcement.context(),
                &settings,
                &own.secrets,
            )
            .await?;
            let mut own_services = Services::new(own_settings, &own)
                .await
                .map_err(|e| StackError::Settings(format!("{}: {e}", function.binary)))?;
            if let Some(clock) = config.clock.clone() {
                own_services = own_services.with_clock(clock);
            }
            functions.insert(function.binary.clone(), own_services);
        }
        let services_of = |binary: &str| -> Result<Services, StackError> {
            functions
                .get(binary)
                .cloned()
                .ok_or_else(|| StackError::Settings(format!("no function builds {binary}")))
        };

        let mut routes = Vec::new();
        let mut sweep_rate = None;
        let mut expiry_rate = None;
        let mut digest_rate = None;
        for function in &template.functions {
            for route in &function.routes {
                let handler = http_function(&function.binary, &services_of(&function.binary)?)
                    .ok_or_else(|| StackError::UnknownFunction {
                        route: format!("{} {}", route.method, route.path),
                        binary: function.binary.clone(),
                    })?;
                routes.push((route.clone(), handler));
            }
            let rate = function
                .schedule
                .as_deref()
                .and_then(rate_seconds)
                .map(Duration::from_secs);
            match function.binary.as_str() {
                "outbox-sweeper" => sweep_rate = rate,
                "subscription-sweeper" => expiry_rate = rate,
                "completions-digest" => digest_rate = rate,
                _ => {}
            }
        }
        let table = RouteTable::new(routes).with_admin_credentials(config.admin);
        let route_list: Vec<_> = table.routes().cloned().collect();

        let (shutdown, watcher) = watch::channel(false);
        let mut tasks = Vec::new();

        let mut server_stop = watcher.clone();
        let app = router(table).into_make_service_with_connect_info::<SocketAddr>();
        tasks.push(tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = server_stop.changed().await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "local HTTP server stopped");
            }
        }));

        let sender = Arc::new(EmailSender::new(services_of("email-sender")?));
        let sweeper = Arc::new(OutboxSweeper::new(services_of("outbox-sweeper")?));
        let expiry = Arc::new(SubscriptionSweeper::new(services_of(
            "subscription-sweeper",
        )?));
        let digest = Arc::new(CompletionsDigest::new(services_of("completions-digest")?));
        if config.run_email_pump {
            tasks.push(tokio::spawn(crate::glue::run_email_pump(
                clients.sqs.clone(),
                resources.queue_url.clone(),
                Arc::clone(&sender),
                watcher.clone(),
            )));
        }
        if config.run_schedules {
            let outbox_job: crate::glue::ScheduledJob = {
                let sweeper = Arc::clone(&sweeper);
                Arc::new(move || {
                    let sweeper = Arc::clone(&sweeper);
                    Box::pin(async move { sweeper.handle().await })
                })
            };
            let expiry_job: crate::glue::ScheduledJob = {
                let expiry = Arc::clone(&expiry);
                Arc::new(move || {
                    let expiry = Arc::clone(&expiry);
                    Box::pin(async move { expiry.handle().await })
                })
            };
            let every = config
                .sweep_every
                .or(sweep_rate)
                .unwrap_or(Duration::from_secs(300));
            tasks.push(tokio::spawn(crate::glue::run_schedule(
                "outbox-sweeper",
                every,
                outbox_job,
                watcher.clone(),
            )));
            let every = config
                .sweep_every
                .or(expiry_rate)
                .unwrap_or(Duration::from_secs(900));
            tasks.push(tokio::spawn(crate::glue::run_schedule(
                "subscription-sweeper",
                every,
                expiry_job,
                watcher.clone(),
            )));
            let digest_job: crate::glue::ScheduledJob = {
                let digest = Arc::clone(&digest);
                Arc::new(move || {
                    let digest = Arc::clone(&digest);
                    Box::pin(async move { digest.handle().await })
                })
            };
            // Daily in the template; `sweep_every` speeds it up like the
            // sweepers, and the day's key still sends one digest.
            let every = config
                .sweep_every
                .or(digest_rate)
                .unwrap_or(Duration::from_secs(86_400));
            tasks.push(tokio::spawn(crate::glue::run_schedule(
                "completions-digest",
                every,
                digest_job,
                watcher.clone(),
            )));
        }

        Ok(Self {
            addr,
            services,
            clients,
            queue_url: resources.queue_url,
            dlq_url: resources.dlq_url,
            endpoint: config.endpoint,
            sender,
            sweeper,
            expiry,
            digest,
            routes: route_list,
            iam: enforcement.log.clone(),
            functions,
            secret_env,
            shutdown,
            tasks,
        })
    }

    /// The services one function gets, held to its policy and holding only
    /// its secrets: tests that call a function directly use these, so their
    /// calls are checked too.
    pub fn services_for(&self, binary: &str) -> Result<Services, StackError> {
        self.functions
            .get(binary)
            .cloned()
            .ok_or_else(|| StackError::Settings(format!("no function builds {binary}")))
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server, the pump and the schedules, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
