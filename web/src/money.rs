//! Amounts as people read and type them. The APIs carry integers of an asset's minor unit (10000
//! EUR at scale 2 is 100.00 EUR); the console shows and parses decimal strings with the asset's
//! scale, digit by digit, never through a float.

/// `minor` units at `scale` decimals, with thousands separated by commas: `-1,234.56`. Sums of
/// many accounts may pass the 64-bit range, so any integer up to 128 bits is taken.
pub fn format_amount(minor: impl Into<i128>, scale: u8) -> String {
    let minor: i128 = minor.into();
    let digits = minor.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3 + fraction.len() + 2);
    if minor < 0 {
        grouped.push('-');
    }
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if !fraction.is_empty() {
        grouped.push('.');
        grouped.push_str(fraction);
    }
    grouped
}

/// Why a typed amount was refused, in words for the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    Empty,
    NotANumber,
    NotPositive,
    TooManyDecimals { scale: u8 },
    TooLarge,
}

impl std::fmt::Display for AmountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("enter an amount"),
            Self::NotANumber => f.write_str("an amount is digits with an optional decimal point, e.g. 12.50"),
            Self::NotPositive => f.write_str("the amount must be more than zero"),
            Self::TooManyDecimals { scale: 0 } => f.write_str("this asset has no decimals"),
            Self::TooManyDecimals { scale } => write!(f, "this asset has at most {scale} decimals"),
            Self::TooLarge => f.write_str("the amount is too large"),
        }
    }
}

/// A positive amount typed in units (`12.5`, `1,000.00`) as minor units at `scale`.
pub fn parse_amount(text: &str, scale: u8) -> Result<i64, AmountError> {
    let text: String = text.trim().chars().filter(|c| *c != ',' && *c != '_').collect();
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || (whole.is_empty() && fraction.is_empty()) {
        return Err(AmountError::NotANumber);
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > usize::from(scale) {
        return Err(AmountError::TooManyDecimals { scale });
    }
    let mut minor: i64 = 0;
    let padding = usize::from(scale) - fraction.len();
    for digit in whole.chars().chain(fraction.chars()).chain("0".repeat(padding).chars()) {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(digit as u8 - b'0')))
            .ok_or(AmountError::TooLarge)?;
    }
    if minor == 0 {
        return Err(AmountError::NotPositive);
    }
    Ok(minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_the_assets_scale() {
        assert_eq!(format_amount(0, 2), "0.00");
        assert_eq!(format_amount(5, 2), "0.05");
        assert_eq!(format_amount(12_345, 2), "123.45");
        assert_eq!(format_amount(-123_456_789, 2), "-1,234,567.89");
        assert_eq!(format_amount(1_000, 0), "1,000");
        assert_eq!(format_amount(i64::MIN, 0), "-9,223,372,036,854,775,808");
        assert_eq!(format_amount(1, 18), "0.000000000000000001");
        assert_eq!(format_amount(i128::from(i64::MAX) * 3, 2), "276,701,161,105,643,274.21");
    }

    #[test]
    fn parses_what_people_type() {
        assert_eq!(parse_amount("12.5", 2), Ok(1_250));
        assert_eq!(parse_amount(" 1,000.00 ", 2), Ok(100_000));
        assert_eq!(parse_amount(".05", 2), Ok(5));
        assert_eq!(parse_amount("7", 0), Ok(7));
        assert_eq!(parse_amount("7.0", 0), Ok(7));
        assert_eq!(parse_amount("92233720368547758.07", 2), Ok(i64::MAX));
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        assert_eq!(parse_amount("", 2), Err(AmountError::Empty));
        assert_eq!(parse_amount("1e3", 2), Err(AmountError::NotANumber));
        assert_eq!(parse_amount("-5", 2), Err(AmountError::NotANumber));
        assert_eq!(parse_amount(".", 2), Err(AmountError::NotANumber));
        assert_eq!(parse_amount("0.00", 2), Err(AmountError::NotPositive));
        assert_eq!(parse_amount("1.005", 2), Err(AmountError::TooManyDecimals { scale: 2 }));
        assert_eq!(parse_amount("1.5", 0), Err(AmountError::TooManyDecimals { scale: 0 }));
        assert_eq!(parse_amount("92233720368547758.08", 2), Err(AmountError::TooLarge));
    }

    #[test]
    fn a_formatted_amount_parses_back() {
        for (minor, scale) in [(1, 2), (99_999, 3), (i64::MAX, 4), (120, 0)] {
            assert_eq!(parse_amount(&format_amount(minor, scale), scale), Ok(minor));
        }
    }
}
