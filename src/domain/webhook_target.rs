//! Which addresses a webhook may be delivered to. A webhook URL is chosen by whoever may
//! subscribe, and the server then sends requests to it from inside the desk's network: a target
//! on loopback, a private or link-local network (the cloud metadata service at 169.254.169.254),
//! a unique-local or multicast address would let a subscriber reach what only the server can
//! (server-side request forgery). Such targets are refused unless the operator allows them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `address` may not receive webhooks, or `None` when it is a public address.
pub fn refusal(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = address.octets();
    if address.is_loopback() {
        Some("a loopback address")
    } else if address.is_private() || (a == 100 && (64..128).contains(&b)) {
        // 100.64.0.0/10 is the carrier-grade NAT range: private in all but name.
        Some("a private address")
    } else if address.is_link_local() {
        Some("a link-local address")
    } else if address.is_multicast() || address.is_broadcast() {
        Some("a multicast or broadcast address")
    } else if address.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else {
        None
    }
}

fn refusal_v6(address: Ipv6Addr) -> Option<&'static str> {
    let segments = address.segments();
    // An IPv4 address carried in IPv6 (mapped ::ffff:0:0/96, or NAT64 64:ff9b::/96) is
    // judged as the IPv4 address it reaches.
    if let Some(v4) = address.to_ipv4_mapped() {
        return refusal_v4(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., high, low] = segments;
        return refusal_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)));
    }
    if address.is_loopback() {
        Some("a loopback address")
    } else if address.is_unspecified() {
        Some("an unspecified address")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("a unique-local address")
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if address.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        refusal(text.parse().unwrap()).is_some()
    }

    #[test]
    fn internal_addresses_of_both_families_are_refused() {
        for address in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(refused(address), "{address} must be refused");
        }
    }

    #[test]
    fn public_addresses_are_accepted() {
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:2800:220:1:248:1893:25c8:1946",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(address), "{address} is public");
        }
    }
}
