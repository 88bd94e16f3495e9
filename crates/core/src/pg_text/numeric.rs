//! `numeric` and `money` (lc_monetary=C) as exact decimals: `-123.4500`, `NaN`,
//! `-$1,234.56`. A decimal gives its unscaled value as big-endian two's-complement bytes, the
//! form of Java's `BigInteger.toByteArray` and of Parquet's `DECIMAL`.

/// A finite decimal: `unscaled × 10^-scale`, exactly as written (`1.50` keeps scale 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    /// Decimal digits of the unscaled value, without sign or point; never empty.
    digits: String,
    /// Digits after the point.
    scale: u32,
}

/// What a `numeric`'s text output holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Numeric {
    /// A number.
    Finite(Decimal),
    /// `NaN`, `Infinity` or `-Infinity`: no decimal can carry them.
    Special,
}

/// Parses `numeric` text output: `-123.4500`, `0`, `NaN`, `Infinity`, `-Infinity`.
pub fn parse_numeric(text: &str) -> Result<Numeric, String> {
    match text {
        "NaN" | "Infinity" | "-Infinity" => Ok(Numeric::Special),
        _ => parse_decimal(text).map(Numeric::Finite),
    }
}

/// Parses `money` text output under lc_monetary=C: `$1,234.56`, `-$0.01`.
pub fn parse_money(text: &str) -> Result<Decimal, String> {
    let cleaned: String = text.chars().filter(|c| !matches!(c, '$' | ',')).collect();
    parse_decimal(&cleaned)
}

fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
    let valid = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !valid(whole) || !valid(fraction) {
        return Err(format!("{text:?} is not a decimal number"));
    }
    let scale = u32::try_from(fraction.len()).map_err(|_| "too many digits".to_owned())?;
    Ok(Decimal {
        negative,
        digits: format!("{whole}{fraction}"),
        scale,
    })
}

impl Decimal {
    /// Digits after the point.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// The same value with `scale` digits after the point; `None` when that would drop
    /// non-zero digits.
    pub fn rescale(mut self, scale: u32) -> Option<Decimal> {
        if scale >= self.scale {
            self.digits
                .extend(std::iter::repeat_n('0', (scale - self.scale) as usize));
        } else {
            let drop = (self.scale - scale) as usize;
            let cut = self.digits.len() - drop;
            if self.digits[cut..].bytes().any(|b| b != b'0') {
                return None;
            }
            self.digits.truncate(cut);
        }
        self.scale = scale;
        Some(self)
    }

    /// The unscaled value as minimal big-endian two's-complement bytes (`0` is `[0x00]`).
    pub fn unscaled_bytes(&self) -> Vec<u8> {
        // Magnitude, little-endian base 256, by multiply-and-add over the decimal digits.
        let mut magnitude: Vec<u8> = Vec::new();
        for digit in self.digits.bytes() {
            let mut carry = u32::from(digit - b'0');
            for byte in magnitude.iter_mut() {
                let value = u32::from(*byte) * 10 + carry;
                *byte = (value & 0xff) as u8;
                carry = value >> 8;
            }
            while carry > 0 {
                magnitude.push((carry & 0xff) as u8);
                carry >>= 8;
            }
        }
        while magnitude.last() == Some(&0) {
            magnitude.pop();
        }
        // One spare byte for the sign, then big-endian.
        magnitude.push(0);
        magnitude.reverse();
        let mut bytes = magnitude;
        let zero = bytes.iter().all(|&b| b == 0);
        if self.negative && !zero {
            for byte in bytes.iter_mut() {
                *byte = !*byte;
            }
            for byte in bytes.iter_mut().rev() {
                let (sum, overflow) = byte.overflowing_add(1);
                *byte = sum;
                if !overflow {
                    break;
                }
            }
        }
        // Minimal form: drop a leading byte that only repeats the next byte's sign bit.
        let pad = if self.negative && !zero { 0xff } else { 0x00 };
        while bytes.len() > 1 && bytes[0] == pad && (bytes[1] & 0x80) == (pad & 0x80) {
            bytes.remove(0);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unscaled(text: &str) -> Vec<u8> {
        parse_decimal(text)
            .map(|d| d.unscaled_bytes())
            .expect("decimal")
    }

    #[test]
    fn unscaled_values_match_java_big_integer_bytes() {
        assert_eq!(unscaled("0"), [0x00]);
        assert_eq!(unscaled("-0.00"), [0x00]);
        assert_eq!(unscaled("1"), [0x01]);
        assert_eq!(unscaled("127"), [0x7f]);
        assert_eq!(unscaled("128"), [0x00, 0x80]);
        assert_eq!(unscaled("-1"), [0xff]);
        assert_eq!(unscaled("-128"), [0x80]);
        assert_eq!(unscaled("-129"), [0xff, 0x7f]);
        assert_eq!(unscaled("1.00"), [0x64]);
        assert_eq!(unscaled("-123.45"), (-12345_i16).to_be_bytes());
        assert_eq!(
            unscaled("18446744073709551616"),
            [0x01, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn numeric_special_values_are_recognised() {
        assert_eq!(parse_numeric("NaN"), Ok(Numeric::Special));
        assert_eq!(parse_numeric("-Infinity"), Ok(Numeric::Special));
        assert!(parse_numeric("1e5").is_err());
        assert!(parse_numeric("").is_err());
    }

    #[test]
    fn rescaling_pads_and_refuses_to_drop_digits() {
        let d = parse_decimal("1.5").expect("decimal");
        assert_eq!(
            d.clone().rescale(3).map(|d| d.unscaled_bytes()),
            Some(vec![0x05, 0xdc])
        );
        assert_eq!(
            parse_decimal("1.50")
                .expect("decimal")
                .rescale(1)
                .map(|d| d.scale()),
            Some(1)
        );
        assert_eq!(d.rescale(0), None);
    }

    #[test]
    fn money_text_loses_its_symbol_and_separators() {
        let money = parse_money("-$1,234.56").expect("money");
        assert_eq!(money.scale(), 2);
        assert_eq!(money.unscaled_bytes(), (-123_456_i32).to_be_bytes()[1..]);
    }
}
