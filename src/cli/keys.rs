//! `frontdoor keys list|rotate|retire`: keys replaced without logging anyone out (see
//! `keys::rotation`).

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::keys::Keys;
use crate::keys::rotation::{self, KeyKind, REFRESH_INTERVAL};

/// `frontdoor keys …`
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List the keys in keys.dir: kind, id, algorithm, from when, current/next/previous.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Make new keys that are published (and open cookies) at once and sign (and seal) after
    /// keys.rotation_delay; both kinds unless one is named.
    Rotate {
        /// Only the signing key.
        #[arg(long, conflicts_with = "cookie")]
        signing: bool,
        /// Only the cookie key.
        #[arg(long)]
        cookie: bool,
        /// Instead of keys.rotation_delay, e.g. `10m` (`0s`: take over at once, for a key
        /// known to be compromised).
        #[arg(long, value_parser = humantime::parse_duration)]
        delay: Option<std::time::Duration>,
    },
    /// Remove a previous or next key by its id: tokens it signed stop verifying and cookies
    /// it sealed stop opening. The current key cannot be retired.
    Retire {
        /// A signing key's kid or a cookie key's id (see `keys list`). A kid is base64url and
        /// may start with `-`: it is taken as the id, not as an option.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// Runs a `keys` command.
pub fn run(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let dir = config.keys_dir();
    let now = crate::clock::now();
    match cmd {
        KeysCommand::List { json } => {
            let keys = open(config)?;
            let listed = keys.list(now);
            if json {
                let rows: Vec<_> = listed
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "kind": k.kind.name(), "id": k.id,
                            "algorithm": k.algorithm.map(|a| a.name()),
                            "not_before": k.not_before, "state": k.state.name(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for k in listed {
                    println!(
                        "{:<8} {:<9} {:<45} {:<6} from {}",
                        k.kind.name(),
                        k.state.name(),
                        k.id,
                        k.algorithm.map_or("-", |a| a.name()),
                        when(k.not_before)
                    );
                }
            }
        }
        KeysCommand::Rotate {
            signing,
            cookie,
            delay,
        } => {
            let delay = delay.unwrap_or(config.keys.rotation_delay.0);
            let at = now + i64::try_from(delay.as_secs()).context("--delay is too long")?;
            let kinds: &[KeyKind] = match (signing, cookie) {
                (true, _) => &[KeyKind::Signing],
                (_, true) => &[KeyKind::Cookie],
                _ => &[KeyKind::Signing, KeyKind::Cookie],
            };
            for kind in kinds {
                let id = rotation::rotate(&dir, *kind, config.keys.algorithm, at)
                    .with_context(|| format!("rotating the {} key", kind.name()))?;
                println!(
                    "{} key {id}: published now, current from {}",
                    kind.name(),
                    when(at)
                );
            }
            println!(
                "running nodes pick it up within {} s or at `frontdoor reload`; retire the previous key once what it signed has expired",
                REFRESH_INTERVAL.as_secs()
            );
        }
        KeysCommand::Retire { id } => {
            let keys = open(config)?;
            let kind = keys.retire(&id, now)?;
            println!(
                "retired {} key {id}; running nodes drop it within {} s or at `frontdoor reload`",
                kind.name(),
                REFRESH_INTERVAL.as_secs()
            );
        }
    }
    Ok(())
}

/// The keys as the server reads them; none are made here (a key the CLI wrote could belong to
/// another user than the server's).
fn open(config: &Config) -> anyhow::Result<Keys> {
    let dir = config.keys_dir();
    let files = rotation::scan(&dir).with_context(|| format!("keys.dir {}", dir.display()))?;
    if !files.iter().any(|f| f.kind == KeyKind::Cookie) {
        anyhow::bail!(
            "no keys in {}: start frontdoor once to make them",
            dir.display()
        );
    }
    Keys::load(&dir, false, config.keys.algorithm).context("keys")
}

/// A moment in words: `start` for the first keys, else UTC.
fn when(ts: i64) -> String {
    if ts == 0 {
        return "the start".into();
    }
    std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::from_secs(ts.unsigned_abs()))
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| ts.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::KeysCommand;
    use crate::cli::{Cli, Command};

    #[test]
    fn a_kid_that_starts_with_a_dash_is_an_id_not_an_option() {
        // Kids are base64url thumbprints: one in 64 starts with `-` (seen in e2e key_rotation).
        let cli = Cli::try_parse_from(["frontdoor", "keys", "retire", "-bAdwsav3YTgmVL5N"])
            .expect("parsed");
        match cli.command {
            Command::Keys(KeysCommand::Retire { id }) => assert_eq!(id, "-bAdwsav3YTgmVL5N"),
            other => panic!("parsed as {other:?}"),
        }
    }
}
