//! A table with a column of every type people put in tables, and rows of the values whose
//! text output is easiest to get wrong; shared by the integration tests of this crate.

pub(crate) const EVERY_TYPE_SCHEMA: &str = r#"
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN positive_int AS int4 CHECK (VALUE > 0);
    CREATE TYPE pair AS (n int4, label text, at timestamptz);
    CREATE TABLE every_type (
        id int4 PRIMARY KEY,
        c_int2 int2, c_int4 int4, c_int8 int8,
        c_numeric numeric, c_float4 float4, c_float8 float8,
        c_bool bool, c_text text, c_varchar varchar(16), c_char char(6),
        c_bytea bytea,
        c_date date, c_time time, c_timetz timetz, c_timestamp timestamp,
        c_timestamptz timestamptz, c_interval interval,
        c_uuid uuid, c_json json, c_jsonb jsonb,
        c_inet inet, c_cidr cidr, c_macaddr macaddr,
        c_bit bit(8), c_varbit varbit,
        c_money money, c_mood mood, c_positive positive_int,
        c_int_array int4[], c_text_2d text[], c_int4range int4range, c_tstzrange tstzrange,
        c_pair pair
    );
"#;

/// Ordinary values, all NULLs, and the values whose text is easiest to get wrong.
pub(crate) const EVERY_TYPE_ROWS: &str = r#"
    INSERT INTO every_type VALUES
    (1, -32768, 2147483647, -9223372036854775808,
     12345.678900, 0.1, 0.30000000000000004,
     true, 'plain', 'varchar', 'ab',
     '\xdeadbeef00',
     '2024-03-17', '13:45:07.123456', '13:45:07+05:30', '2024-03-17 13:45:07.5',
     '2024-03-17 13:45:07.123456+02', '1 year 2 months 3 days 04:05:06.789',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,  "a": [1, 2.50]}', '{"b": 1, "a": [1, 2.50]}',
     '192.168.0.1', '10.0.0.0/8', '08:00:2b:01:02:03',
     B'10101010', B'101',
     12.34, 'happy', 7,
     ARRAY[1, NULL, 3], ARRAY[['a', 'b'], ['c d', NULL]], '[1,10)',
     '[2024-01-01 00:00+00, 2024-06-01 12:00+05:30)',
     ROW(1, 'x', '2024-03-17 00:00:00+00')),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL),
    (3, 0, 0, 0,
     'NaN', 'NaN', 'Infinity',
     false, E'quote '' backslash \\ newline \n tab \t unicode é 😀', '', '',
     '\x00ff00',
     'infinity', '24:00:00', '00:00:00-15:59', '-infinity',
     'infinity', '-1 day +02:03:04.5',
     '00000000-0000-0000-0000-000000000000', '[]', '{"é": "\u00e9", "nested": {"z": null}}',
     '::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff',
     B'00000000', B'',
     -0.01, 'sad', 1,
     '{}', '{{"\"q\"", "back\\slash"}, {"NULL", "null"}}', 'empty',
     '(,)',
     ROW(NULL, 'a "quoted", (paren) text', NULL)),
    (4, 1, -1, 1,
     repeat('9', 1000)::numeric, '-Infinity', '-0',
     true, 'NULL', 'null', 'abcdef',
     '\x',
     '0044-03-15 BC', '00:00:00', '23:59:59.999999+14', '0044-03-15 12:00:00 BC',
     '1999-12-31 23:59:59.999999-08', '0 seconds',
     'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '"just a string"', '3.14000',
     '10.1.2.3/24', '10.1.2.0/24', 'AA-BB-CC-DD-EE-FF',
     B'11111111', B'0',
     0, 'ok', 2147483647,
     ARRAY[NULL, NULL]::int4[], ARRAY[['', ' '], ['{', '}']], '(,5]',
     '[2000-01-01 00:00+00,)',
     ROW(-1, '', '2000-01-01 00:00:00+00')),
    (5, 2, 3, 4,
     '-0.000100', 'Infinity', 'NaN',
     false, '    leading and trailing    ', 'x', 'x',
     '\x5c00',
     '1970-01-01', '12:00:00.000001', '12:00:00+00', '1970-01-01 00:00:00',
     '1970-01-01 00:00:00+00', '-1000000 years -11 months +30 days 01:02:03.000004',
     'ffffffff-ffff-ffff-ffff-ffffffffffff', '{"a":1}', '{"a": [1e3, 1.0E-2]}',
     '0.0.0.0/0', '0.0.0.0/0', '00:00:00:00:00:00',
     B'00000001', B'1010101010101010101',
     92233720368547758.07, 'happy', 3,
     ARRAY[-2147483648], ARRAY[['a']], '[-5,-5]',
     '[1970-01-01 00:00:00.000001+00,1970-01-01 00:00:00.000002+00]',
     ROW(NULL, NULL, NULL));
"#;
