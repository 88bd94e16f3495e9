//! What a column's `pg_type` OID and `atttypmod` say about its text: the element type of an
//! array type, the precision and scale of a `numeric`.

/// `(array type, element type)` OIDs of the built-in array types whose text is parsed element by
/// element.
const ARRAYS: [(u32, u32); 36] = [
    (1000, 16),
    (1001, 17),
    (1002, 18),
    (1003, 19),
    (1005, 21),
    (1007, 23),
    (1009, 25),
    (1014, 1042),
    (1015, 1043),
    (1016, 20),
    (1017, 600),
    (1021, 700),
    (1022, 701),
    (1028, 26),
    (1040, 829),
    (1041, 869),
    (1115, 1114),
    (1182, 1082),
    (1183, 1083),
    (1185, 1184),
    (1187, 1186),
    (1231, 1700),
    (1270, 1266),
    (1561, 1560),
    (1563, 1562),
    (143, 142),
    (199, 114),
    (2951, 2950),
    (3807, 3802),
    (3905, 3904),
    (3907, 3906),
    (3909, 3908),
    (3911, 3910),
    (3913, 3912),
    (3927, 3926),
    (651, 650),
];

/// The element type of built-in array type `oid` (`_int4` → `int4`); `None` for any other type.
pub fn array_element(oid: u32) -> Option<u32> {
    ARRAYS
        .iter()
        .find(|(array, _)| *array == oid)
        .map(|&(_, element)| element)
}

/// The `(precision, scale)` of a `numeric` column's `atttypmod`; `None` without one. Postgres 15+
/// allows a negative scale, kept as an 11-bit two's-complement number.
pub fn numeric_typmod(typmod: i32) -> Option<(u32, i32)> {
    if typmod < 4 {
        return None;
    }
    let packed = typmod - 4;
    let precision = ((packed >> 16) & 0xffff).unsigned_abs();
    let scale = ((packed & 0x7ff) ^ 1024) - 1024;
    Some((precision, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_types_name_their_elements_and_numeric_typmods_unpack() {
        assert_eq!(array_element(1007), Some(23));
        assert_eq!(array_element(23), None);
        assert_eq!(numeric_typmod(-1), None);
        assert_eq!(numeric_typmod((10 << 16 | 2) + 4), Some((10, 2)));
        // numeric(5, -2): the scale's 11 bits hold -2.
        assert_eq!(numeric_typmod((5 << 16 | 0x7fe) + 4), Some((5, -2)));
    }
}
