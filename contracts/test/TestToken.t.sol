// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./base/Test.sol";
import {TestToken} from "../src/TestToken.sol";

/// @notice The tests' ERC-20.
contract TestTokenTest is Test {
    address internal constant OWNER = address(0x0A11CE);
    address internal constant ALICE = address(0xA11CE5);
    address internal constant BOB = address(0xB0B);
    TestToken internal token;

    event Transfer(address indexed from, address indexed to, uint256 amount);
    event Approval(address indexed holder, address indexed spender, uint256 amount);

    function setUp() public {
        token = new TestToken(OWNER);
    }

    function test_only_the_owner_mints() public {
        vm.expectEmit(address(token));
        emit Transfer(address(0), ALICE, 5);
        vm.prank(OWNER);
        token.mint(ALICE, 5);
        assertEq(token.balanceOf(ALICE), 5);
        assertEq(token.totalSupply(), 5);

        vm.expectRevert(abi.encodeWithSelector(TestToken.NotOwner.selector, ALICE));
        vm.prank(ALICE);
        token.mint(ALICE, 5);
    }

    function testFuzz_transfer_moves_what_the_holder_has(uint256 minted, uint256 amount) public {
        vm.prank(OWNER);
        token.mint(ALICE, minted);
        vm.prank(ALICE);
        if (amount > minted) {
            vm.expectRevert(abi.encodeWithSelector(TestToken.InsufficientBalance.selector, ALICE, minted, amount));
            assertFalse(token.transfer(BOB, amount)); // reverts (expected above): nothing is returned
            return;
        }
        vm.expectEmit(address(token));
        emit Transfer(ALICE, BOB, amount);
        assertTrue(token.transfer(BOB, amount));
        assertEq(token.balanceOf(ALICE), minted - amount);
        assertEq(token.balanceOf(BOB), amount);
        assertEq(token.totalSupply(), minted);
    }

    function test_transfer_from_spends_the_allowance_unless_unlimited() public {
        vm.prank(OWNER);
        token.mint(ALICE, 100);
        vm.expectEmit(address(token));
        emit Approval(ALICE, BOB, 30);
        vm.prank(ALICE);
        token.approve(BOB, 30);

        vm.prank(BOB);
        assertTrue(token.transferFrom(ALICE, BOB, 20));
        assertEq(token.allowance(ALICE, BOB), 10);
        vm.expectRevert(abi.encodeWithSelector(TestToken.InsufficientAllowance.selector, ALICE, BOB, 10, 11));
        vm.prank(BOB);
        assertFalse(token.transferFrom(ALICE, BOB, 11)); // reverts (expected above): nothing is returned

        vm.prank(ALICE);
        token.approve(BOB, type(uint256).max);
        vm.prank(BOB);
        assertTrue(token.transferFrom(ALICE, BOB, 80));
        assertEq(token.allowance(ALICE, BOB), type(uint256).max);
        assertEq(token.balanceOf(BOB), 100);
    }

    function test_minting_past_2_pow_256_overflows() public {
        vm.startPrank(OWNER);
        token.mint(ALICE, type(uint256).max);
        vm.expectRevert(abi.encodeWithSignature("Panic(uint256)", 0x11));
        token.mint(BOB, 1);
        vm.stopPrank();
    }

    function test_it_describes_itself() public view {
        assertEq(token.name(), "walproof test token");
        assertEq(token.symbol(), "WPT");
        assertEq(token.decimals(), 18);
        assertEq(token.owner(), OWNER);
    }
}
