//! Address ranges in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a
//! bare address meaning just that address), for the trusted-proxy list and
//! the special-purpose address tables. IPv4-mapped IPv6 addresses are
//! compared as the IPv4 address they carry.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix_length: u8,
}

impl IpRange {
    /// Whether `address` is in the range; an IPv4-mapped IPv6 address is
    /// also tried as the IPv4 address it carries.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.contains_exactly(address) || self.contains_exactly(address.to_canonical())
    }

    fn contains_exactly(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = ipv4_mask(self.prefix_length);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = ipv6_mask(self.prefix_length);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }

    /// Whether the network address has bits set after the prefix
    /// (`10.0.0.1/8`): harmless for matching, a typo in a vendored table.
    pub fn has_host_bits(&self) -> bool {
        match self.network {
            IpAddr::V4(v4) => u32::from(v4) & !ipv4_mask(self.prefix_length) != 0,
            IpAddr::V6(v6) => u128::from(v6) & !ipv6_mask(self.prefix_length) != 0,
        }
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }
}

fn ipv4_mask(prefix_length: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix_length)).unwrap_or(0)
}

fn ipv6_mask(prefix_length: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix_length)).unwrap_or(0)
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| format!("{address:?} is not an IP address"))?;
        let max_length = if network.is_ipv4() { 32 } else { 128 };
        let prefix_length = match prefix {
            None => max_length,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|length| *length <= max_length)
                .ok_or_else(|| format!("{prefix:?} is not a prefix length (0 to {max_length})"))?,
        };
        Ok(IpRange { network, prefix_length })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_what_they_should() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3", "10.1.2.4", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("0.0.0.0/0", "::1", false),
            ("10.0.0.0/8", "::ffff:10.0.0.1", true),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "2606:4700::1111", true),
            ("fe80::1", "fe80::1", true),
            ("::ffff:0:0/96", "::ffff:1.2.3.4", true),
            ("::ffff:0:0/96", "1.2.3.4", false),
        ];
        for (range, address, expected) in cases {
            let range: IpRange = range.parse().unwrap();
            assert_eq!(range.contains(address.parse().unwrap()), expected, "{range} ∋ {address}");
        }
    }

    #[test]
    fn host_bits_are_noticed() {
        for (text, expected) in
            [("10.0.0.0/8", false), ("10.0.0.1/8", true), ("2001:db8::/32", false), ("2001:db8::1/32", true)]
        {
            assert_eq!(text.parse::<IpRange>().unwrap().has_host_bits(), expected, "{text}");
        }
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for text in ["", "10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/-1", "10.0.0.0/"] {
            assert!(text.parse::<IpRange>().is_err(), "{text:?}");
        }
    }
}
