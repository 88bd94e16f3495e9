// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./base/Test.sol";
import {RowText} from "../src/lib/RowText.sol";

/// @dev RowText behind an external call (calldata in, reverts catchable).
contract RowTextHarness {
    function parseUint(string calldata text) external pure returns (uint256) {
        return RowText.parseUint(bytes(text));
    }

    function parseAddress(string calldata text) external pure returns (address) {
        return RowText.parseAddress(bytes(text));
    }
}

/// @notice Parsing the texts of a withdrawal row: one accepted text per value.
contract RowTextTest is Test {
    RowTextHarness internal harness;

    function setUp() public {
        harness = new RowTextHarness();
    }

    function testFuzz_every_uint256_reads_back_from_its_decimal_text(uint256 value) public view {
        assertEq(harness.parseUint(vm.toString(value)), value);
    }

    function test_the_edges_of_uint256() public view {
        assertEq(harness.parseUint("0"), 0);
        assertEq(harness.parseUint("9"), 9);
        assertEq(
            harness.parseUint("115792089237316195423570985008687907853269984665640564039457584007913129639935"),
            type(uint256).max
        );
    }

    function test_a_decimal_of_2_pow_256_or_more_is_rejected() public {
        string[3] memory tooLarge = [
            "115792089237316195423570985008687907853269984665640564039457584007913129639936", // 2^256
            "115792089237316195423570985008687907853269984665640564039457584007913129639940",
            "999999999999999999999999999999999999999999999999999999999999999999999999999999" // 78 nines
        ];
        for (uint256 i; i < tooLarge.length; ++i) {
            _expectNotADecimal(tooLarge[i]);
            harness.parseUint(tooLarge[i]);
        }
        string memory digits79 = "1000000000000000000000000000000000000000000000000000000000000000000000000000000";
        assertEq(bytes(digits79).length, 79);
        _expectNotADecimal(digits79);
        harness.parseUint(digits79);
    }

    function test_texts_that_are_not_canonical_decimals_are_rejected() public {
        string[12] memory bad = ["", "00", "01", "+1", "-1", " 1", "1 ", "1.0", "1e3", "0x1", "1_000", unicode"١"];
        for (uint256 i; i < bad.length; ++i) {
            _expectNotADecimal(bad[i]);
            harness.parseUint(bad[i]);
        }
    }

    /// Any byte other than 0-9 anywhere makes the text not a decimal.
    function testFuzz_a_non_digit_byte_anywhere_is_rejected(uint256 value, uint256 position, bytes1 other) public {
        vm.assume(other < "0" || other > "9");
        bytes memory text = bytes(vm.toString(value));
        text[bound(position, 0, text.length - 1)] = other;
        _expectNotADecimal(string(text));
        harness.parseUint(string(text));
    }

    function testFuzz_every_address_reads_back_in_either_case(address a) public view {
        string memory checksummed = vm.toString(a); // EIP-55: mixed case
        assertEq(harness.parseAddress(checksummed), a);
        assertEq(harness.parseAddress(_lower(checksummed)), a);
    }

    function test_texts_that_are_not_0x_and_40_hex_digits_are_rejected() public {
        string[7] memory bad = [
            "",
            "0x",
            "70997970c51812dc3a010c7d01b50e0d17dc79c800", // 42 characters, no 0x
            "0X70997970c51812dc3a010c7d01b50e0d17dc79c8",
            "0x70997970c51812dc3a010c7d01b50e0d17dc79c",
            "0x70997970c51812dc3a010c7d01b50e0d17dc79c8a",
            "0x70997970c51812dc3a010c7d01b50e0d17dc79cg"
        ];
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(RowText.NotAnAddress.selector, bad[i]));
            harness.parseAddress(bad[i]);
        }
    }

    function testFuzz_a_non_hex_byte_anywhere_is_rejected(address a, uint256 position, bytes1 other) public {
        vm.assume(!((other >= "0" && other <= "9") || (other >= "a" && other <= "f") || (other >= "A" && other <= "F")));
        bytes memory text = bytes(vm.toString(a));
        text[bound(position, 2, 41)] = other;
        vm.expectRevert(abi.encodeWithSelector(RowText.NotAnAddress.selector, string(text)));
        harness.parseAddress(string(text));
    }

    function _expectNotADecimal(string memory text) internal {
        vm.expectRevert(abi.encodeWithSelector(RowText.NotADecimal.selector, text));
    }

    function _lower(string memory text) internal pure returns (string memory) {
        bytes memory b = bytes(text);
        for (uint256 i; i < b.length; ++i) {
            if (b[i] >= "A" && b[i] <= "Z") b[i] = bytes1(uint8(b[i]) + 32);
        }
        return string(b);
    }
}
