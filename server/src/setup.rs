//! Builds the engine from the validated configuration and the users file.

use crate::config::{AuthMethod, Config, RadiusConfig, RadiusOrder};
use crate::engine::ipsec::Engine;
use crate::engine::lns::{Lns, LnsConfig};
use crate::engine::pool::Pool;
use crate::engine::radius::{DaeClient, Order, RadiusSettings};
use crate::users::Users;
use ike::ikev1::keys::Secret;
use ike::ikev1::main_mode::{Authentication, PskEntry, PskTable};
use ppp::auth::Method;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Everything the engine needs that is not in [`Config`].
#[derive(Debug)]
pub struct Secrets {
    /// The IKE pre-shared key for every peer no `[[ipsec.peer]]` entry covers; `None` only
    /// when such entries exist (then nobody else can connect).
    pub psk: Option<Secret>,
    /// The users.
    pub users: Users,
}

fn method(m: AuthMethod) -> Method {
    match m {
        AuthMethod::MsChapV2 => Method::MsChapV2,
        AuthMethod::ChapMd5 => Method::ChapMd5,
        AuthMethod::Pap => Method::Pap,
    }
}

/// The RADIUS client's settings. `boot` tags this run's Acct-Session-Ids.
fn radius_settings(r: &RadiusConfig, config: &Config, boot: u64) -> RadiusSettings {
    use radius::crypto::Secret as RadiusSecret;
    use radius::verify::MessageAuthenticatorPolicy;
    let servers = r
        .servers
        .iter()
        .map(|s| radius::ServerConfig {
            name: SocketAddr::new(
                s.address,
                if s.auth_port != 0 {
                    s.auth_port
                } else {
                    s.acct_port
                },
            )
            .to_string(),
            secret: RadiusSecret::new(s.secret.expose().as_bytes()),
            auth: (s.auth_port != 0).then(|| SocketAddr::new(s.address, s.auth_port)),
            acct: (s.acct_port != 0).then(|| SocketAddr::new(s.address, s.acct_port)),
            message_authenticator: if s.require_message_authenticator {
                MessageAuthenticatorPolicy::Required
            } else {
                MessageAuthenticatorPolicy::IfPresent
            },
        })
        .collect();
    let called = match config.listen {
        IpAddr::V4(a) if a.is_unspecified() => r.nas_ip_address.map(IpAddr::V4),
        a => Some(a),
    };
    RadiusSettings {
        client: radius::Config {
            servers,
            nas: radius::NasIdentity {
                ip_address: r.nas_ip_address,
                identifier: Some(r.nas_identifier.as_bytes().to_vec()),
            },
            timeout: r.timeout,
            retries: r.retries,
            dead_time: r.dead_time,
            ..radius::Config::default()
        },
        order: match r.order {
            RadiusOrder::LocalFirst => Order::LocalFirst,
            RadiusOrder::RadiusOnly => Order::RadiusOnly,
            RadiusOrder::RadiusFirst => Order::RadiusFirst,
        },
        accounting: r.accounting,
        interim_interval: Some(r.interim_interval).filter(|d| !d.is_zero()),
        called_station_id: called.map(|a| a.to_string().into_bytes()),
        dae_clients: r
            .dae_clients
            .iter()
            .map(|c| DaeClient {
                address: c.address,
                secret: RadiusSecret::new(c.secret.expose().as_bytes()),
            })
            .collect(),
        boot,
    }
}

/// A tag for this run's Acct-Session-Ids: the start time in seconds above 24 random bits, so
/// that two runs differ even within one second or after the clock was set back.
fn boot_tag(rng: &mut ChaCha20Rng) -> u64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "set-up, not the engine: the wall clock tags Acct-Session-Ids once per run"
    )]
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs << 24) | (rng.next_u64() & 0x00ff_ffff)
}

/// The IKE settings: one key for everybody, or a table by peer address with the default key
/// for every other address.
///
/// # Errors
/// When there is no key at all, or an entry does not fit the table (the configuration
/// checks both already).
pub(crate) fn ike_config(
    config: &Config,
    default: Option<Secret>,
) -> Result<ike::endpoint::Config, String> {
    if config.peer_psks.is_empty() {
        let psk = default.ok_or("no pre-shared key configured")?;
        return Ok(ike::endpoint::Config::new(psk.expose()));
    }
    let mut table = PskTable::new();
    table.set_default(default);
    for p in &config.peer_psks {
        table
            .insert(PskEntry {
                peer: p.address,
                id: p.id.clone(),
                secret: Secret::new(p.psk.expose().as_bytes()),
            })
            .map_err(|e| format!("ipsec.peer {}: {e}", p.address))?;
    }
    let mut ike = ike::endpoint::Config::new(&[]);
    ike.phase1.auth = Authentication::PreSharedKeys(Arc::new(table));
    Ok(ike)
}

/// The general pool: `pool.range` without the LNS's own address, with the users' static
/// addresses and the named pools reserved from dynamic allocation.
///
/// # Errors
/// A message when the range is invalid.
pub fn pool(config: &Config, users: &Users) -> Result<Pool, String> {
    let mut reserved: Vec<_> = users.static_addresses().collect();
    for (first, last) in config.named_pools.iter().map(|(_, r)| r) {
        reserved.extend((u32::from(*first)..=u32::from(*last)).map(Ipv4Addr::from));
    }
    Pool::new(
        config.pool_range.0,
        config.pool_range.1,
        &[config.local_address],
        &reserved,
    )
}

/// Builds the engine.
///
/// # Errors
/// A message when the pool cannot be built (bad range, static addresses outside it).
pub fn engine(
    config: &Config,
    secrets: Secrets,
    seed: [u8; 32],
) -> Result<Engine<ChaCha20Rng>, String> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut named = BTreeMap::new();
    for (name, (first, last)) in &config.named_pools {
        named.insert(
            name.clone(),
            Pool::new(*first, *last, &[config.local_address], &[])?,
        );
    }
    let pool = pool(config, &secrets.users)?;
    let l2tp = l2tp::Config {
        host_name: config.l2tp_host_name.as_bytes().to_vec(),
        secret: config
            .l2tp_secret
            .as_ref()
            .map(|s| l2tp::Secret::new(s.expose().as_bytes())),
        hello_interval: config.hello_interval,
        limits: l2tp::Limits {
            max_tunnels: usize::try_from(config.max_tunnels).unwrap_or(usize::MAX),
            max_tunnels_per_address: usize::try_from(config.max_tunnels_per_peer)
                .unwrap_or(usize::MAX),
            max_sessions_per_tunnel: usize::try_from(config.max_sessions_per_tunnel)
                .unwrap_or(usize::MAX),
            ..l2tp::Limits::default()
        },
        ..l2tp::Config::default()
    };
    let link = ppp::LinkConfig {
        mru: config.mru,
        echo_interval: (!config.echo_interval.is_zero()).then_some(config.echo_interval),
        echo_failures: u8::try_from(config.echo_failures).unwrap_or(u8::MAX),
        ..ppp::LinkConfig::default()
    };
    let ppp = ppp::ServerConfig {
        link,
        methods: config.auth.iter().copied().map(method).collect(),
        failure_delay: config.auth_failure_delay,
        ..ppp::ServerConfig::default()
    };
    let dns = [config.dns.first().copied(), config.dns.get(1).copied()];
    let lns_config = LnsConfig {
        l2tp: Arc::new(l2tp),
        ppp: Arc::new(ppp),
        local: config.local_address,
        dns,
    };
    let mut lns = Lns::new(
        lns_config,
        pool,
        secrets.users,
        config.policy.clone(),
        ChaCha20Rng::from_rng(&mut rng),
    )
    .with_named_pools(named)
    .with_filters(config.filters.clone());
    if let Some(r) = &config.radius {
        let boot = boot_tag(&mut rng);
        lns = lns
            .with_radius(radius_settings(r, config, boot))
            .map_err(|e| format!("radius: {e}"))?;
    }
    let mut ike = ike_config(config, secrets.psk)?;
    ike.phase1.policy.lifetime = config.ike_lifetime;
    ike.phase2.lifetime = config.sa_lifetime;
    ike.phase2
        .sha256_96_peers
        .clone_from(&config.esp_sha256_96_peers);
    ike.dpd_interval = (!config.dpd_interval.is_zero()).then_some(config.dpd_interval);
    ike.dpd_timeout = config.dpd_timeout;
    ike.max_dh_per_second = Some(config.max_dh_per_second).filter(|n| *n > 0);
    ike.max_established = config.max_ike_sas;
    ike.max_half_open = config.max_half_open;
    ike.max_half_open_per_address = config.max_half_open_per_address;
    // Each client holds an inbound and an outbound ESP SA, and twice that while a rekey
    // overlaps (a fixed 65,536 capped the server at 32,768 clients).
    let esp_sas = config.max_ike_sas.saturating_mul(4);
    let mut engine = Engine::new(ike, lns, esp_sas, rng);
    engine.allow_plain_l2tp(config.allow_plain_l2tp);
    if config.keylog_file.is_some() {
        engine.enable_keylog();
    }
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build_an_engine() {
        let config = Config::load(None, |_| None).unwrap();
        let users = Users::parse(
            "users.toml",
            "[[user]]\nname = \"hb@hb\"\npassword = \"admin@123\"\n",
        )
        .unwrap();
        let engine = engine(
            &config,
            Secrets {
                psk: Some(Secret::new(b"k")),
                users,
            },
            [7; 32],
        )
        .unwrap();
        assert_eq!(engine.lns().pool().size(), 99, "172.16.1.2-100");
        assert_eq!(engine.child_sas(), 0);
    }

    #[test]
    fn per_peer_keys_become_the_ike_key_table() {
        let text = "[[ipsec.peer]]\naddress = \"198.51.100.0/24\"\npsk = \"branch\"\n\
                    [[ipsec.peer]]\naddress = \"198.51.100.7\"\nid = \"a@example.com\"\npsk = \"laptop\"\n";
        let config = Config::parse("f.toml", text, |_| None).unwrap();
        let key = |ike: &ike::endpoint::Config, ip: &str| match &ike.phase1.auth {
            Authentication::PreSharedKeys(t) => t
                .lookup(ip.parse().unwrap())
                .map(|(s, id)| (s.expose().to_vec(), id.cloned())),
            other => panic!("{other:?}"),
        };
        let ike = ike_config(&config, None).unwrap();
        assert_eq!(
            key(&ike, "198.51.100.7"),
            Some((
                b"laptop".to_vec(),
                Some(ike::ikev1::main_mode::PeerId::user_fqdn("a@example.com"))
            ))
        );
        assert_eq!(key(&ike, "198.51.100.8"), Some((b"branch".to_vec(), None)));
        assert_eq!(
            key(&ike, "192.0.2.1"),
            None,
            "no default: strangers have no key"
        );
        let ike = ike_config(&config, Some(Secret::new(b"default"))).unwrap();
        assert_eq!(key(&ike, "192.0.2.1"), Some((b"default".to_vec(), None)));
        // Without entries: the single key, as before.
        let plain = Config::parse("f.toml", "", |_| None).unwrap();
        let ike = ike_config(&plain, Some(Secret::new(b"k"))).unwrap();
        assert!(matches!(ike.phase1.auth, Authentication::PreSharedKey(_)));
        assert!(ike_config(&plain, None).is_err());
    }
}
