//! `reload` (and SIGHUP): re-reads the configuration file and the users file, validates all of
//! it before anything changes, and says which changed settings need a restart.
//!
//! Applied at run time:
//! - the users file (new users can log in; removed users cannot log in again, and their live
//!   sessions are kicked; changed passwords apply to the next login);
//! - `pool.range`, within the network routed to the TUN device at start (growing the range;
//!   existing addresses never move; a range that no longer holds a live address is refused);
//! - `pool.dns` (new sessions), `policy.rules` and `policy.networks` (every session's next
//!   packet);
//! - `ipsec.psk` / `psk_file` and `[[ipsec.peer]]` keys (IKE SAs negotiated afterwards).
//!
//! Everything else is logged as "needs a restart", by key, and keeps its running value.

use crate::config::Config;
use crate::engine::ipsec::admin::Reload;
use crate::engine::lns::admin::LnsReload;
use crate::setup;

/// A validated reload: what the engine takes, the configuration that will then be running,
/// and notes for the operator.
#[derive(Debug)]
pub struct Prepared {
    /// For [`crate::engine::ipsec::Engine::reload`].
    pub reload: Reload,
    /// The running configuration after the reload (changed keys that need a restart keep
    /// their running values).
    pub config: Config,
    /// What changed, and what needs a restart.
    pub notes: Vec<String>,
}

/// Reads and checks everything; changes nothing.
///
/// # Errors
/// A message naming the file and what is wrong with it.
pub fn prepare(running: &Config, env: impl Fn(&str) -> Option<String>) -> Result<Prepared, String> {
    let new = Config::load(running.source.as_deref(), env).map_err(|e| e.to_string())?;
    let radius_only = new
        .radius
        .as_ref()
        .is_some_and(|r| r.order == crate::config::RadiusOrder::RadiusOnly);
    if !radius_only && !new.users_file.exists() {
        // `run` would generate one; a reload never writes files.
        return Err(format!(
            "{}: the users file does not exist",
            new.users_file.display()
        ));
    }
    let secrets = crate::state::secrets(&new).map_err(|e| format!("{e:#}"))?;
    let mut notes = restart_needed(running, &new);
    let mut applied = running.clone();
    applied.users_file.clone_from(&new.users_file);
    applied.dns.clone_from(&new.dns);
    applied.policy = new.policy.clone();
    let routed = running.pool_net();
    let (first, last) = new.pool_range;
    if new.pool_range != running.pool_range {
        if routed.contains(&first) && routed.contains(&last) {
            applied.pool_range = new.pool_range;
            notes.push(format!(
                "pool.range: {}-{} (was {}-{})",
                first, last, running.pool_range.0, running.pool_range.1
            ));
        } else {
            notes.push(format!(
                "pool.range {first}-{last} needs a restart: it leaves the network {routed} routed to the TUN device; keeping {}-{}",
                running.pool_range.0, running.pool_range.1
            ));
        }
    }
    if format!("{:?}", new.policy) != format!("{:?}", running.policy) {
        notes.push(format!(
            "policy: {} rule(s), applied to every session's next packet",
            new.policy.rules().len()
        ));
    }
    if new.dns != running.dns {
        notes.push(format!("pool.dns: {:?} for new sessions", new.dns));
    }
    let keys_changed = new.psk != running.psk || !same_peer_keys(running, &new);
    let ike_auth = if keys_changed {
        applied.psk.clone_from(&new.psk);
        applied.peer_psks.clone_from(&new.peer_psks);
        notes.push("ipsec pre-shared keys: changed, for IKE SAs negotiated from now on".into());
        Some(setup::ike_config(&applied, secrets.psk)?.phase1.auth)
    } else {
        None
    };
    let pool = setup::pool(&applied, &secrets.users)?;
    notes.push(format!("users: {}", secrets.users.len()));
    let dns = [applied.dns.first().copied(), applied.dns.get(1).copied()];
    Ok(Prepared {
        reload: Reload {
            lns: LnsReload {
                users: secrets.users,
                pool,
                policy: applied.policy.clone(),
                dns,
            },
            ike_auth,
        },
        config: applied,
        notes,
    })
}

fn same_peer_keys(a: &Config, b: &Config) -> bool {
    a.peer_psks.len() == b.peer_psks.len()
        && a.peer_psks.iter().zip(&b.peer_psks).all(|(x, y)| {
            x.address == y.address && x.id == y.id && x.psk.expose() == y.psk.expose()
        })
}

/// The keys whose change needs a restart, each with a note.
fn restart_needed(running: &Config, new: &Config) -> Vec<String> {
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    let fields: [(&str, bool); 31] = [
        ("server.listen", running.listen == new.listen),
        ("server.state_dir", running.state_dir == new.state_dir),
        (
            "server.allow_plain_l2tp",
            running.allow_plain_l2tp == new.allow_plain_l2tp,
        ),
        ("server.ip_forward", running.ip_forward == new.ip_forward),
        (
            "server.control_socket",
            running.control_socket == new.control_socket,
        ),
        (
            "ipsec.ike_lifetime",
            running.ike_lifetime == new.ike_lifetime,
        ),
        ("ipsec.sa_lifetime", running.sa_lifetime == new.sa_lifetime),
        (
            "ipsec.dpd_interval",
            running.dpd_interval == new.dpd_interval,
        ),
        ("ipsec.dpd_timeout", running.dpd_timeout == new.dpd_timeout),
        (
            "ipsec.nat_keepalive",
            running.nat_keepalive == new.nat_keepalive,
        ),
        (
            "ipsec.max_dh_per_second",
            running.max_dh_per_second == new.max_dh_per_second,
        ),
        ("ipsec.max_ike_sas", running.max_ike_sas == new.max_ike_sas),
        (
            "ipsec.max_half_open",
            running.max_half_open == new.max_half_open
                && running.max_half_open_per_address == new.max_half_open_per_address,
        ),
        ("ipsec.keylog_file", running.keylog_file == new.keylog_file),
        (
            "ipsec.esp_sha256_96_peers",
            same(&running.esp_sha256_96_peers, &new.esp_sha256_96_peers),
        ),
        (
            "l2tp.host_name",
            running.l2tp_host_name == new.l2tp_host_name,
        ),
        ("l2tp.secret", running.l2tp_secret == new.l2tp_secret),
        (
            "l2tp.hello_interval",
            running.hello_interval == new.hello_interval,
        ),
        (
            "l2tp.max_tunnels",
            running.max_tunnels == new.max_tunnels
                && running.max_tunnels_per_peer == new.max_tunnels_per_peer,
        ),
        (
            "l2tp.max_sessions_per_tunnel",
            running.max_sessions_per_tunnel == new.max_sessions_per_tunnel,
        ),
        ("ppp.auth", running.auth == new.auth),
        ("ppp.mru", running.mru == new.mru),
        (
            "ppp.echo_interval",
            running.echo_interval == new.echo_interval
                && running.echo_failures == new.echo_failures,
        ),
        (
            "ppp.auth_failure_delay",
            running.auth_failure_delay == new.auth_failure_delay,
        ),
        ("pool.local", running.local_address == new.local_address),
        ("pool.nbns", running.nbns == new.nbns),
        ("pool.named", running.named_pools == new.named_pools),
        ("policy.filters", same(&running.filters, &new.filters)),
        ("tun.name", running.tun_name == new.tun_name),
        ("tun.mtu", running.tun_mtu == new.tun_mtu),
        ("radius", same(&running.radius, &new.radius)),
    ];
    fields
        .iter()
        .filter(|(_, same)| !same)
        .map(|(key, _)| format!("{key} changed: needs a restart (keeping the running value)"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, config: &str, users: &str) -> std::path::PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let users_path = dir.join("users.toml");
        std::fs::write(&users_path, users).unwrap();
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            format!(
                "[server]\nstate_dir = \"{}\"\n[ipsec]\npsk = \"k\"\n[users]\nfile = \"{}\"\n{config}",
                dir.display(),
                users_path.display()
            ),
        )
        .unwrap();
        path
    }

    const HB: &str = "[[user]]\nname = \"hb@hb\"\npassword = \"admin@123\"\n";

    #[test]
    fn a_reload_applies_users_pool_dns_and_policy_and_names_what_needs_a_restart() {
        let dir = std::env::temp_dir().join(format!("l2sec-reload-{}", std::process::id()));
        let path = write(&dir, "", HB);
        let running = Config::load(Some(&path), |_| None).unwrap();
        write(
            &dir,
            "[pool]\nrange = \"172.16.1.2-172.16.1.120\"\ndns = [\"9.9.9.9\"]\n[tun]\nname = \"other\"\n[policy]\nrules = [\"allow pool -> intranet\"]\n",
            &format!("{HB}[[user]]\nname = \"carol\"\npassword = \"c\"\n"),
        );
        let p = prepare(&running, |_| None).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            p.config.pool_range.1,
            std::net::Ipv4Addr::new(172, 16, 1, 120)
        );
        assert_eq!(p.config.tun_name, running.tun_name, "kept: {:?}", p.notes);
        assert!(
            p.notes
                .iter()
                .any(|n| n.starts_with("tun.name changed: needs a restart")),
            "{:?}",
            p.notes
        );
        assert_eq!(
            p.notes
                .iter()
                .filter(|n| n.contains("needs a restart"))
                .count(),
            1
        );
        assert_eq!(p.reload.lns.users.len(), 2);
        assert_eq!(p.reload.lns.pool.size(), 119);
        assert_eq!(
            p.reload.lns.dns,
            [Some(std::net::Ipv4Addr::new(9, 9, 9, 9)), None]
        );
        assert_eq!(p.reload.lns.policy.rules().len(), 1);
        assert!(p.reload.ike_auth.is_none(), "the PSK did not change");
    }

    #[test]
    fn a_bad_file_is_refused_whole_and_a_changed_psk_is_taken() {
        let dir = std::env::temp_dir().join(format!("l2sec-reload-bad-{}", std::process::id()));
        let path = write(&dir, "", HB);
        let running = Config::load(Some(&path), |_| None).unwrap();
        write(&dir, "[pool]\nrange = \"172.16.1.9-172.16.1.2\"\n", HB);
        let e = prepare(&running, |_| None).unwrap_err();
        assert!(e.contains("pool.range"), "{e}");
        write(&dir, "", "[[user]]\nname = \"x\"\n");
        let e = prepare(&running, |_| None).unwrap_err();
        assert!(e.contains("users.toml"), "{e}");
        write(&dir, "[pool]\nrange = \"172.16.1.2-172.16.2.100\"\n", HB);
        let p = prepare(&running, |_| None).unwrap();
        assert_eq!(
            p.config.pool_range, running.pool_range,
            "outside the routed network"
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("pool.range") && n.contains("needs a restart"))
        );
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("psk = \"k\"", "psk = \"new\"");
        std::fs::write(&path, text).unwrap();
        let p = prepare(&running, |_| None).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(p.reload.ike_auth.is_some());
        assert_eq!(p.config.psk.as_ref().map(|s| s.expose()), Some("new"));
    }
}
