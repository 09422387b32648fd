//! Requests the server sends to webhook receivers, guarded against server-side request
//! forgery (`domain::webhook_target`): a target is checked after name resolution when it is
//! subscribed and again at every delivery, the connection goes only to addresses that passed,
//! and redirects are not followed (a 3xx is a failed delivery), so a public receiver cannot
//! bounce a delivery inward. `WEBHOOK_ALLOW_PRIVATE=true` lifts the address rule for desks whose
//! receivers live on their own network.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::webhook_target;

/// What the address rule says of `url`, after resolving its host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetCheck {
    /// Every address the host has is public.
    Allowed,
    /// The host name does not resolve now.
    Unresolved(String),
    /// An address of the host may not receive webhooks; the reason, for people.
    Refused(String),
}

fn refused(host: &str, address: IpAddr) -> Option<String> {
    webhook_target::refusal(address).map(|why| {
        // A literal address names itself (IPv6 in brackets); a name says what it resolved to.
        if host.trim_matches(['[', ']']) == address.to_string() {
            format!("{address} is {why}; webhook targets must be public addresses")
        } else {
            format!(
                "`{host}` resolves to {address}, {why}; webhook targets must be public addresses"
            )
        }
    })
}

/// Checks every address of `url`'s host. A URL that does not parse is [`TargetCheck::Refused`].
pub async fn check_target(url: &str) -> TargetCheck {
    let Some((host, port)) = url::Url::parse(url).ok().and_then(|url| {
        let port = url.port_or_known_default()?;
        Some((url.host()?.to_owned(), port))
    }) else {
        return TargetCheck::Refused("the URL has no host".into());
    };
    let addresses: Vec<IpAddr> = match &host {
        url::Host::Ipv4(v4) => vec![IpAddr::V4(*v4)],
        url::Host::Ipv6(v6) => vec![IpAddr::V6(*v6)],
        url::Host::Domain(name) => match tokio::net::lookup_host((name.as_str(), port)).await {
            Ok(found) => found.map(|socket| socket.ip()).collect(),
            Err(err) => {
                return TargetCheck::Unresolved(format!("`{name}` does not resolve: {err}"));
            }
        },
    };
    let name = host.to_string();
    match addresses
        .into_iter()
        .find_map(|address| refused(&name, address))
    {
        Some(reason) => TargetCheck::Refused(reason),
        None => TargetCheck::Allowed,
    }
}

/// Resolves host names for deliveries and refuses the name when any of its addresses may not
/// receive webhooks, so the connection itself never reaches such an address, whatever the name
/// resolved to when it was checked (DNS rebinding).
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(reason) = found.iter().find_map(|socket| refused(&host, socket.ip())) {
                return Err(reason.into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client of the delivery worker: no redirects, a 10 s limit per delivery, and the
/// guarded resolver unless `allow_private`.
pub fn delivery_client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("incident-desk/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if allow_private {
        builder.build()
    } else {
        builder.dns_resolver(Arc::new(GuardedResolver)).build()
    }
}
