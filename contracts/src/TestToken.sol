// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title TestToken
/// @notice A minimal ERC-20 for walproof's tests and local stack: 18 decimals, minted by its
/// owner. Not for value: the owner mints at will.
contract TestToken {
    /// @notice The token's name.
    string public constant name = "walproof test token";
    /// @notice The token's symbol.
    string public constant symbol = "WPT";
    /// @notice Base units per token: 10^18.
    uint8 public constant decimals = 18;

    /// @notice The account that mints.
    address public immutable owner;
    /// @notice Tokens in existence, in base units.
    uint256 public totalSupply;
    /// @notice Base units held by each account.
    mapping(address account => uint256 amount) public balanceOf;
    /// @notice Base units `spender` may move from `holder`'s balance.
    mapping(address holder => mapping(address spender => uint256 amount)) public allowance;

    /// @notice `amount` base units moved from `from` to `to` (`from` 0: minted).
    event Transfer(address indexed from, address indexed to, uint256 amount);
    /// @notice `holder` allowed `spender` to move `amount` base units.
    event Approval(address indexed holder, address indexed spender, uint256 amount);

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice `account` holds `balance`, less than the `needed` amount.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice `spender` may move `allowed` of `holder`'s tokens, less than the `needed` amount.
    error InsufficientAllowance(address holder, address spender, uint256 allowed, uint256 needed);

    /// @param owner_ The account that mints.
    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice Creates `amount` base units for `to`. Owner only.
    function mint(address to, uint256 amount) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        totalSupply += amount;
        unchecked {
            balanceOf[to] += amount; // no balance exceeds the total supply
        }
        emit Transfer(address(0), to, amount);
    }

    /// @notice Moves `amount` base units from the caller to `to`.
    /// @return Always true (failures revert).
    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    /// @notice Lets `spender` move up to `amount` of the caller's base units.
    /// @return Always true.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Moves `amount` base units from `from` to `to` within the caller's allowance
    /// (an allowance of 2^256 - 1 is never spent).
    /// @return Always true (failures revert).
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(from, msg.sender, allowed, amount);
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(from, balance, amount);
        unchecked {
            balanceOf[from] = balance - amount;
            balanceOf[to] += amount; // no balance exceeds the total supply
        }
        emit Transfer(from, to, amount);
    }
}
