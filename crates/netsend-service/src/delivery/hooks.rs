//! Delivery hooks: after a message is durable, the `[[hooks]]` for its alias
//! run a program (argv, no shell, text on stdin, an environment of PATH and
//! the `NETSEND_FROM`/`_TO`/`_ID`/`_PEER` of the message,
//! killed after its timeout) or POST it to an HTTP(S) URL (ntfy or Gotify
//! style). At most [`MAX_RUNNING`] run at once; a failure is logged and never
//! touches the acknowledgement, which was sent before.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use netsend_proto::hooks::{alias_matches, environment, substitute_argv, title, HookMessage};
use tokio::io::AsyncWriteExt;

use netsend_proto::display::LogSafe;

use super::DeliveryChannel;
use crate::admission::slots::TaskSlots;
use crate::config::{HookConfig, HookFormat};
use crate::metrics::DeliveryCounter;
use crate::shutdown::Shutdown;
use crate::store::StoredMessage;

/// Hooks running at once.
pub(crate) const MAX_RUNNING: usize = 8;
/// Hooks waiting for a slot; beyond this a hook is dropped (logged).
pub(crate) const MAX_WAITING: usize = 256;
/// PATH given to exec hooks when the service has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The hooks channel: the configured hooks and the slots they run in.
pub(crate) struct HookRunner {
    hooks: Vec<Arc<HookConfig>>,
    slots: TaskSlots,
    /// Whether exec hooks are refused now: the service runs as root.
    as_root: fn() -> bool,
    /// Where each hook's outcome is counted.
    counter: DeliveryCounter,
}

impl HookRunner {
    /// The runner for `hooks`, its hooks on `shutdown`'s tracker.
    pub(crate) fn new(hooks: &[HookConfig], shutdown: Shutdown) -> Self {
        let slots = TaskSlots::new(MAX_RUNNING, MAX_WAITING, shutdown);
        Self::with(hooks, slots, running_as_root)
    }

    /// The runner for `hooks` in `slots`, refusing exec hooks while
    /// `as_root` says so.
    pub(super) fn with(hooks: &[HookConfig], slots: TaskSlots, as_root: fn() -> bool) -> Self {
        Self {
            hooks: hooks.iter().cloned().map(Arc::new).collect(),
            slots,
            as_root,
            counter: DeliveryCounter::default(),
        }
    }

    /// Counts each hook's outcome (`ran`, `failed`, `dropped`) in `counter`.
    pub(crate) fn counted(self, counter: DeliveryCounter) -> Self {
        Self { counter, ..self }
    }

    /// The hooks whose alias matches `to`.
    fn matching<'a>(&'a self, to: &'a str) -> impl Iterator<Item = &'a Arc<HookConfig>> {
        self.hooks
            .iter()
            .filter(move |h| alias_matches(&h.alias, to))
    }
}

impl DeliveryChannel for HookRunner {
    fn name(&self) -> &'static str {
        "hooks"
    }

    fn wants(&self, message: &StoredMessage) -> bool {
        self.matching(&message.to).next().is_some()
    }

    /// Starts every hook whose alias matches `message.to`, each in a slot.
    fn deliver(self: Arc<Self>, message: Arc<StoredMessage>) {
        for hook in self.matching(&message.to) {
            let (run_hook, message_id) = (hook.clone(), message.id);
            let (message, as_root) = (message.clone(), self.as_root);
            let counter = self.counter.clone();
            if !self.slots.spawn(async move {
                counter.record("hooks", run(&run_hook, &message, as_root).await);
            }) {
                self.counter.record("hooks", "dropped");
                tracing::warn!(event = "hook", id = message_id, alias = %LogSafe(&hook.alias), "too many hooks waiting: hook dropped");
            }
        }
    }
}

/// Whether the service runs as root, where exec hooks are refused.
fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs one hook for `message` and logs how it went: `ran` or `failed`.
async fn run(hook: &HookConfig, message: &StoredMessage, as_root: fn() -> bool) -> &'static str {
    let fields = HookMessage {
        id: message.id,
        from: &message.from,
        to: &message.to,
        peer: &message.source,
        text: &message.text,
    };
    let timeout = Duration::from_secs(hook.timeout_secs);
    let outcome = match (&hook.exec, &hook.url) {
        (Some(argv), _) => {
            let argv = substitute_argv(argv, &fields);
            run_exec(&argv, &environment(&fields), fields.text, timeout, as_root).await
        }
        (None, Some(url)) => post(url, hook.format, &fields, timeout).await,
        (None, None) => Ok(String::new()),
    };
    match outcome {
        Ok(done) => {
            tracing::info!(event = "hook", id = message.id, alias = %LogSafe(&hook.alias), outcome = %LogSafe(&done), "delivery hook ran");
            "ran"
        }
        Err(e) => {
            tracing::warn!(event = "hook", id = message.id, alias = %LogSafe(&hook.alias), reason = %LogSafe(&e), "delivery hook failed");
            "failed"
        }
    }
}

/// Runs `argv` with `text` on stdin and `env` (besides `PATH`) as its whole
/// environment; kills its process group after `timeout`. Refused while
/// `as_root` says the service runs as root.
async fn run_exec(
    argv: &[String],
    env: &[(&str, String)],
    text: &str,
    timeout: Duration,
    as_root: fn() -> bool,
) -> Result<String, String> {
    if as_root() {
        return Err(
            "the service runs as root: exec hooks run only as the service user (set user)".into(),
        );
    }
    let (program, args) = argv.split_first().ok_or("empty exec")?;
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let group = child.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
    let mut stdin = child.stdin.take();
    let text = text.as_bytes().to_vec();
    let finished = tokio::time::timeout(timeout, async {
        if let Some(stdin) = stdin.as_mut() {
            // A program that does not read its input is not an error.
            let _ = stdin.write_all(&text).await;
        }
        drop(stdin);
        child.wait().await
    })
    .await;
    match finished {
        Ok(Ok(status)) if status.success() => Ok(status.to_string()),
        Ok(Ok(status)) => Err(format!("{program}: {status}")),
        Ok(Err(e)) => Err(format!("{program}: {e}")),
        Err(_) => {
            if let Some(group) = group {
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            }
            // Reap it now, so no zombie outlives the hook.
            let _ = child.kill().await;
            Err(format!("{program}: killed after {timeout:?}"))
        }
    }
}

/// POSTs the message to `url`, ntfy or Gotify style.
async fn post(
    url: &str,
    format: HookFormat,
    message: &HookMessage<'_>,
    timeout: Duration,
) -> Result<String, String> {
    let title = title(message);
    let (content_type, body) = match format {
        HookFormat::Ntfy => ("text/plain; charset=utf-8", message.text.to_owned()),
        HookFormat::Gotify => (
            "application/json",
            serde_json::json!({ "title": title, "message": message.text, "priority": 5 })
                .to_string(),
        ),
    };
    let url = url.to_owned();
    let request = move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build()
            .into();
        let mut post = agent.post(&url).header("Content-Type", content_type);
        if format == HookFormat::Ntfy {
            post = post.header("Title", &title);
        }
        post.send(body)
            .map(|r| format!("HTTP {}", r.status()))
            .map_err(|e| format!("{url}: {e}"))
    };
    tokio::task::spawn_blocking(request)
        .await
        .map_err(|e| e.to_string())?
}
