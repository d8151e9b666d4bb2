//! Shamir secret sharing over GF(2⁸), byte by byte (the split backups of the active root key).
//!
//! A secret of L bytes becomes N shares of L bytes each, numbered 1..=N; any K of them give
//! the secret back, and K−1 or fewer give **no information** about it: for every byte, each
//! possible secret value is equally consistent with any K−1 share values (the random
//! coefficients make the K−1 values uniformly distributed whatever the secret is; see the
//! tests). The field is GF(2⁸) with the AES polynomial x⁸+x⁴+x³+x+1; arithmetic uses no
//! lookup tables and no secret-dependent branches.
//!
//! Pure: the randomness comes from the caller (an RNG); no I/O. The printed share sheets,
//! and which K and N were used, are the signer's business.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// Why a split or combine is not possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    /// K or N out of range.
    #[error("a threshold of {threshold} out of {shares} shares is not possible (need 2 ≤ threshold ≤ shares ≤ 255)")]
    Parameters {
        /// K.
        threshold: usize,
        /// N.
        shares: usize,
    },
    /// Nothing to split.
    #[error("the secret is empty")]
    EmptySecret,
    /// Fewer shares than the threshold.
    #[error("{given} share(s) given but {threshold} are needed; fewer than the threshold reveal nothing about the key")]
    TooFew {
        /// Shares given.
        given: usize,
        /// K.
        threshold: usize,
    },
    /// Two shares with the same number.
    #[error("share {0} is given twice")]
    Duplicate(u8),
    /// Share number 0 is never produced (it would be the secret itself).
    #[error("share number 0 is not a valid share")]
    ZeroIndex,
    /// The shares do not have the same length.
    #[error(
        "the shares have different lengths ({0} and {1} bytes): they do not belong to one split"
    )]
    Length(usize, usize),
}

/// One share: its number (the x coordinate, 1..=255) and one byte per secret byte.
pub struct Share {
    /// The share number.
    pub x: u8,
    /// The share bytes (secret).
    pub y: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Share {{ x: {}, y: {} bytes, redacted }}",
            self.x,
            self.y.len()
        )
    }
}

/// Multiplication in GF(2⁸) mod x⁸+x⁴+x³+x+1 (shift-and-add, constant time).
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    p
}

/// The multiplicative inverse (a²⁵⁴; 0 for 0, never used with 0).
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// Splits `secret` into `shares` shares of which any `threshold` restore it, with the
/// polynomial coefficients drawn from `rng`.
pub fn split<R: RngCore + CryptoRng>(
    secret: &[u8],
    threshold: usize,
    shares: usize,
    rng: &mut R,
) -> Result<Vec<Share>, ShamirError> {
    split_with(secret, threshold, shares, |buf| rng.fill_bytes(buf))
}

/// [`split`] with the coefficients from `fill` (each call fills the K−1 random coefficients
/// of one secret byte's polynomial); the tests use it to enumerate every choice.
fn split_with(
    secret: &[u8],
    threshold: usize,
    shares: usize,
    mut fill: impl FnMut(&mut [u8]),
) -> Result<Vec<Share>, ShamirError> {
    if threshold < 2 || threshold > shares || shares > 255 {
        return Err(ShamirError::Parameters { threshold, shares });
    }
    if secret.is_empty() {
        return Err(ShamirError::EmptySecret);
    }
    let mut out: Vec<Share> = (1..=shares)
        .map(|x| Share {
            x: x as u8,
            y: Zeroizing::new(Vec::with_capacity(secret.len())),
        })
        .collect();
    let mut coeffs = Zeroizing::new(vec![0u8; threshold - 1]);
    for &s in secret {
        fill(&mut coeffs);
        for share in &mut out {
            // Horner: ((c[k-2]·x + c[k-3])·x + … + c[0])·x + s
            let mut y = 0u8;
            for &c in coeffs.iter().rev() {
                y = mul(y, share.x) ^ c;
            }
            share.y.push(mul(y, share.x) ^ s);
        }
    }
    Ok(out)
}

/// Restores the secret from at least `threshold` shares (the first `threshold` are used).
pub fn combine(shares: &[Share], threshold: usize) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    if shares.len() < threshold || threshold < 2 {
        return Err(ShamirError::TooFew {
            given: shares.len(),
            threshold: threshold.max(2),
        });
    }
    let used = &shares[..threshold];
    for (i, a) in used.iter().enumerate() {
        if a.x == 0 {
            return Err(ShamirError::ZeroIndex);
        }
        if a.y.len() != used[0].y.len() {
            return Err(ShamirError::Length(used[0].y.len(), a.y.len()));
        }
        if used[..i].iter().any(|b| b.x == a.x) {
            return Err(ShamirError::Duplicate(a.x));
        }
    }
    // Lagrange basis at 0: l_i = Π_{j≠i} x_j / (x_j − x_i)  (− is ⊕ in GF(2⁸)).
    let basis: Vec<u8> = used
        .iter()
        .map(|a| {
            used.iter()
                .filter(|b| b.x != a.x)
                .fold(1u8, |acc, b| mul(acc, mul(b.x, inv(b.x ^ a.x))))
        })
        .collect();
    let mut secret = Zeroizing::new(vec![0u8; used[0].y.len()]);
    for (share, l) in used.iter().zip(&basis) {
        for (s, &y) in secret.iter_mut().zip(share.y.iter()) {
            *s ^= mul(y, *l);
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(s: &Share) -> Share {
        Share {
            x: s.x,
            y: s.y.clone(),
        }
    }

    #[test]
    fn field_arithmetic() {
        // FIPS-197 §4.2: {57}·{83} = {c1}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
        }
    }

    #[test]
    fn any_k_of_n_restore() {
        let mut rng = rand::rngs::OsRng;
        let secret: Vec<u8> = (0..=255u8).chain(0..40).collect();
        for (k, n) in [(2, 2), (2, 3), (3, 5), (5, 5), (4, 9)] {
            let shares = split(&secret, k, n, &mut rng).unwrap();
            assert_eq!(shares.len(), n);
            // Every subset of size k (bitmask enumeration), in both orders.
            for mask in 0u32..(1 << n) {
                if mask.count_ones() as usize != k {
                    continue;
                }
                let mut pick: Vec<Share> = shares
                    .iter()
                    .filter(|s| mask & (1 << (s.x - 1)) != 0)
                    .map(copy)
                    .collect();
                assert_eq!(
                    &combine(&pick, k).unwrap()[..],
                    &secret[..],
                    "{k}/{n} {mask:b}"
                );
                pick.reverse();
                assert_eq!(&combine(&pick, k).unwrap()[..], &secret[..]);
            }
            // More than k shares: still right.
            let all: Vec<Share> = shares.iter().map(copy).collect();
            assert_eq!(&combine(&all, k).unwrap()[..], &secret[..]);
        }
    }

    #[test]
    fn fewer_than_k_shares_reveal_nothing() {
        // K = 2: for each secret byte, share 1 takes every value exactly once over the 256
        // coefficient choices — the same distribution whatever the secret.
        for secret in [0u8, 0x55, 0xff] {
            let mut seen = [0u32; 256];
            for c in 0..=255u8 {
                let shares = split_with(&[secret], 2, 3, |b| b[0] = c).unwrap();
                seen[shares[0].y[0] as usize] += 1;
            }
            assert!(seen.iter().all(|&n| n == 1), "secret {secret:#x}");
        }
        // K = 3: any two shares (here 2 and 3) take every pair of values exactly once over
        // the 65 536 coefficient choices, for every secret tried.
        for secret in [0u8, 0x9c] {
            let mut seen = vec![0u8; 65536];
            for c in 0..=u16::MAX {
                let shares = split_with(&[secret], 3, 3, |b| {
                    b[0] = c as u8;
                    b[1] = (c >> 8) as u8;
                })
                .unwrap();
                seen[usize::from(shares[1].y[0]) << 8 | usize::from(shares[2].y[0])] += 1;
            }
            assert!(seen.iter().all(|&n| n == 1), "secret {secret:#x}");
        }
        // And the API refuses to "combine" too few.
        let shares = split(b"key", 3, 5, &mut rand::rngs::OsRng).unwrap();
        let two: Vec<Share> = shares[..2].iter().map(copy).collect();
        assert_eq!(
            combine(&two, 3).unwrap_err(),
            ShamirError::TooFew {
                given: 2,
                threshold: 3
            }
        );
    }

    #[test]
    fn refusals() {
        let mut rng = rand::rngs::OsRng;
        for (k, n) in [(1, 3), (4, 3), (2, 256), (0, 0)] {
            assert!(matches!(
                split(b"x", k, n, &mut rng),
                Err(ShamirError::Parameters { .. })
            ));
        }
        assert_eq!(
            split(b"", 2, 3, &mut rng).unwrap_err(),
            ShamirError::EmptySecret
        );
        let shares = split(b"secret", 2, 3, &mut rng).unwrap();
        let dup = vec![copy(&shares[0]), copy(&shares[0])];
        assert_eq!(combine(&dup, 2).unwrap_err(), ShamirError::Duplicate(1));
        let mut short = copy(&shares[1]);
        short.y.pop();
        let mixed = vec![copy(&shares[0]), short];
        assert_eq!(combine(&mixed, 2).unwrap_err(), ShamirError::Length(6, 5));
        let zero = vec![
            Share {
                x: 0,
                y: shares[0].y.clone(),
            },
            copy(&shares[1]),
        ];
        assert_eq!(combine(&zero, 2).unwrap_err(), ShamirError::ZeroIndex);
        assert!(!format!("{:?}", shares[0]).contains(&format!("{:?}", &shares[0].y[..])));
    }
}
