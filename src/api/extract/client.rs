//! The client's address, for the sign-in and confirmation-link limits: the TCP peer, unless the
//! peer is one of `TRUSTED_PROXIES`; then `X-Forwarded-For`, read from the right (the hop the
//! trusted proxy added) past every trusted proxy. Entries left of the first untrusted one are
//! whatever the client sent, and are never believed.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client address of `request`, given the proxies trusted to name it.
pub fn client_address(request: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip();
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .collect();
    Some(behind_proxies(peer, &forwarded, trusted))
}

/// The client behind `peer` by the `X-Forwarded-For` header `values` (in the order received),
/// trusting only `trusted` to have written them.
pub fn behind_proxies(peer: IpAddr, values: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    let mut client = peer;
    let hops = values.iter().flat_map(|value| value.split(',')).rev();
    for hop in hops {
        if !is_trusted(&client) {
            break;
        }
        // A hop that is not an address ends the walk at the proxy that passed it on.
        match hop.trim().parse::<IpAddr>() {
            Ok(address) => client = address,
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let peer = ip("192.0.2.10");
        assert_eq!(behind_proxies(peer, &["203.0.113.9"], &[]), peer);
        assert_eq!(behind_proxies(peer, &[], &nets(&["10.0.0.0/8"])), peer);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        // A client that makes up its own header gets only the address the proxy saw.
        assert_eq!(
            behind_proxies(ip("127.0.0.1"), &["1.1.1.1, 203.0.113.9"], &trusted),
            ip("203.0.113.9")
        );
        // Two proxies of ours, each header line counted.
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), &["198.51.100.4", "10.0.0.1"], &trusted),
            ip("198.51.100.4")
        );
        // Every hop trusted: the leftmost is the client.
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), &["10.0.0.7, 10.0.0.1"], &trusted),
            ip("10.0.0.7")
        );
        // A hop that is not an address stops at the proxy that passed it on.
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), &["203.0.113.9, unknown"], &trusted),
            ip("10.0.0.2")
        );
        // No header: the proxy itself.
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), &[], &trusted),
            ip("10.0.0.2")
        );
    }
}
