//! The state directory: a generated pre-shared key and user when none are configured, so that
//! `l2sec-server run` works out of the box (printed once, kept for the next start).

use crate::config::Config;
use crate::setup::Secrets;
use crate::users::Users;
use anyhow::Context as _;
use ike::ikev1::keys::Secret;
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

/// 32 bytes from the operating system for the engine's generator.
///
/// # Errors
/// When the OS generator fails.
pub fn seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(seed)
}

fn random_text(len: usize) -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The PSK and users: from the configuration, or generated once into the state directory
/// (the PSK only when no per-peer keys are configured either).
///
/// # Errors
/// When the users file is unreadable or invalid, or the state directory is not writable.
pub fn secrets(config: &Config) -> anyhow::Result<Secrets> {
    let psk = match &config.psk {
        Some(p) => Some(Secret::new(p.expose().as_bytes())),
        // Per-peer keys and no default: only those peers may connect.
        None if !config.peer_psks.is_empty() => None,
        None => {
            let path = config.state_dir.join("psk");
            if !path.exists() {
                let psk = random_text(24)?;
                write_private(&path, &psk)?;
                #[expect(
                    clippy::print_stderr,
                    reason = "the generated secret is shown once, on purpose, to the operator"
                )]
                {
                    eprintln!(
                        "l2sec-server: generated pre-shared key (kept in {}): {psk}",
                        path.display()
                    );
                }
            }
            Some(Secret::new(
                std::fs::read_to_string(&path)?.trim().as_bytes(),
            ))
        }
    };
    let users_path = &config.users_file;
    let radius_only = config
        .radius
        .as_ref()
        .is_some_and(|r| r.order == crate::config::RadiusOrder::RadiusOnly);
    if radius_only {
        // Nobody is checked against the file: do not make up a user nobody can use.
        if !users_path.exists() {
            return Ok(Secrets {
                psk,
                users: Users::parse("(none)", "")?,
            });
        }
    } else if !users_path.exists() {
        let password = random_text(12)?;
        let text = format!("[[user]]\nname = \"vpn\"\npassword = \"{password}\"\n");
        write_private(users_path, &text)?;
        #[expect(
            clippy::print_stderr,
            reason = "the generated user is shown once, on purpose, to the operator"
        )]
        {
            eprintln!(
                "l2sec-server: generated user 'vpn' with password {password} (kept in {})",
                users_path.display()
            );
        }
    }
    let text = std::fs::read_to_string(users_path)
        .with_context(|| format!("reading {}", users_path.display()))?;
    let users = Users::parse(&users_path.display().to_string(), &text)?;
    Ok(Secrets { psk, users })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radius_only_makes_up_no_local_user() {
        let dir = std::env::temp_dir().join(format!("l2sec-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let text = format!(
            "[server]\nstate_dir = \"{}\"\n[ipsec]\npsk = \"k\"\n[radius]\norder = \"radius-only\"\n\
             [[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"s\"\n",
            dir.display()
        );
        let config = Config::parse("f.toml", &text, |_| None).unwrap();
        let secrets = secrets(&config).unwrap();
        assert!(secrets.users.is_empty());
        assert!(!config.users_file.exists(), "no users file was written");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
