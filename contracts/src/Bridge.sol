// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {KeyRegistry} from "./KeyRegistry.sol";
import {Eip712} from "./lib/Eip712.sol";
import {RowHash} from "./lib/RowHash.sol";
import {RowText} from "./lib/RowText.sol";
import {SmtProof} from "./lib/SmtProof.sol";

/// @notice A root of walproof's tree as validators attest it (EIP-712).
struct RootAttestation {
    /// The commit LSN of the source transaction the root is after.
    uint64 commitLsn;
    /// The Sparse Merkle Tree root after that transaction.
    bytes32 root;
    /// The hash of the transaction's last ledger entry (its place in the ledger's hash chain).
    bytes32 ledgerHash;
}

/// @notice A withdrawal row as validators approve it (EIP-712).
struct WithdrawalApproval {
    /// The row's `id`.
    uint256 id;
    /// Who is paid.
    address recipient;
    /// How much, in the asset's base units.
    uint256 amount;
    /// The commit LSN of the transaction that inserted the row.
    uint64 commitLsn;
}

/// @dev The one ERC-20 function the bridge calls.
interface IERC20Transfer {
    function transfer(address to, uint256 amount) external returns (bool);
}

/// @title Bridge
/// @notice walproof's root registry and withdrawals. Roots of the source's Sparse Merkle Tree
/// are accepted, one per commit LSN and in increasing LSN order, when a threshold of the key
/// registry's active validator keys signed them. A row of the withdrawal table is paid — ETH or
/// one ERC-20 asset — either when a threshold of validators signed its approval ({withdraw}) or
/// when it is proven to be in an accepted root ({withdrawWithProof}); each id is paid once,
/// whichever way it arrives.
///
/// Signatures (both paths): 65 bytes `r ‖ s ‖ v`, `v` 27 or 28, `s` at most secp256k1n/2,
/// over the EIP-712 digest in the domain {name "walproof", version "1", chainId, this bridge};
/// sorted by recovered signer, strictly ascending (so no key counts twice); every signer
/// active in the registry; at least {threshold} of them.
///
/// IMPORTANT: a withdrawal row is payable from any accepted root that holds it. The source
/// must treat the withdrawal table as insert-only: a row updated before it is paid can be paid
/// with its old or its new values (once), and a deleted row stays provable from earlier roots.
/// IMPORTANT: the asset is assumed to be a plain ERC-20 (no fee on transfer, no rebasing).
contract Bridge {
    /// @notice EIP-712 type hash of `RootAttestation(uint64 commitLsn,bytes32 root,bytes32 ledgerHash)`.
    bytes32 public constant ROOT_ATTESTATION_TYPEHASH =
        keccak256("RootAttestation(uint64 commitLsn,bytes32 root,bytes32 ledgerHash)");
    /// @notice EIP-712 type hash of
    /// `WithdrawalApproval(uint256 id,address recipient,uint256 amount,uint64 commitLsn)`.
    bytes32 public constant WITHDRAWAL_APPROVAL_TYPEHASH =
        keccak256("WithdrawalApproval(uint256 id,address recipient,uint256 amount,uint64 commitLsn)");

    /// @dev What a root slot holds for the empty tree's root (32 zero bytes), so that a zero
    /// slot means "no root". A real root equal to this value would be a SHA-256 preimage of it.
    bytes32 private constant EMPTY_ROOT_SLOT = keccak256("walproof/bridge/empty-tree-root");
    /// @dev secp256k1n / 2: the largest `s` accepted.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice The account that sets the threshold.
    address public immutable owner;
    /// @notice The registry whose active keys sign.
    KeyRegistry public immutable registry;
    /// @notice The asset withdrawals pay: an ERC-20 token, or 0 for ETH.
    address public immutable asset;

    bytes32 private immutable _cachedDomainSeparator;
    uint256 private immutable _cachedChainId;
    address private immutable _cachedThis;

    /// @notice The withdrawal table's schema on the source (e.g. "public").
    string public withdrawalSchema;
    /// @notice The withdrawal table's name on the source (e.g. "walproof_withdrawals").
    string public withdrawalTable;

    /// @notice The commit LSN of the last root accepted (0 before the first).
    uint64 public lastCommitLsn;
    /// @notice How many distinct active validator signatures a root or an approval needs.
    uint256 public threshold;

    /// @dev The root of each accepted commit LSN (see EMPTY_ROOT_SLOT).
    mapping(uint64 commitLsn => bytes32 root) private _roots;
    /// @dev Paid withdrawal ids, 256 to a word: sequential ids share storage slots, so most
    /// payments set a bit in a word already written (~5,000 gas instead of ~22,000).
    mapping(uint256 word => uint256 bits) private _paidWords;

    /// @notice The root of `commitLsn` was accepted, signed by `signers` validators.
    event RootCommitted(uint64 indexed commitLsn, bytes32 indexed root, bytes32 ledgerHash, uint256 signers);
    /// @notice Withdrawal `id` paid `amount` to `recipient`; `commitLsn` is the approval's, or
    /// the root's the row was proven in (`byProof`).
    event WithdrawalPaid(
        uint256 indexed id, address indexed recipient, uint256 amount, uint64 indexed commitLsn, bool byProof
    );
    /// @notice The threshold is now `threshold`.
    event ThresholdSet(uint256 threshold);

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice A threshold must be at least 1.
    error InvalidThreshold(uint256 threshold);
    /// @notice The ERC-20 asset has no code.
    error AssetHasNoCode(address asset);
    /// @notice ETH was sent to a bridge that pays in the ERC-20 `asset`.
    error EthNotAccepted(address asset);
    /// @notice `roots` and `signatureSets` differ in length.
    error LengthMismatch(uint256 roots, uint256 signatureSets);
    /// @notice `commitLsn` is not above `last`, the last accepted (or the previous in the batch).
    error LsnNotIncreasing(uint64 commitLsn, uint64 last);
    /// @notice `signers` signatures were given where `threshold` are needed.
    error BelowThreshold(uint256 signers, uint256 threshold);
    /// @notice Signature `index` is not 65 bytes, has a `v` other than 27 or 28, or recovers
    /// no key.
    error BadSignature(uint256 index);
    /// @notice Signature `index` has an `s` above secp256k1n/2 (a malleated form).
    error HighS(uint256 index);
    /// @notice Signature `index` recovers `signer`, not above the previous signer `previous`.
    error SignersNotAscending(uint256 index, address signer, address previous);
    /// @notice `signer` is not an active key of the registry.
    error SignerNotActive(address signer);
    /// @notice Withdrawal `id` was already paid.
    error AlreadyPaid(uint256 id);
    /// @notice Withdrawal `id` has a zero amount.
    error ZeroAmount(uint256 id);
    /// @notice No root was accepted for `commitLsn`.
    error UnknownRoot(uint64 commitLsn);
    /// @notice The proof shows that the root of `commitLsn` holds no row under `key`.
    error RowNotInRoot(uint64 commitLsn, bytes32 key);
    /// @notice The root of `commitLsn` holds `provenLeaf` under `key`, not the given row's `rowLeaf`.
    error RowMismatch(uint64 commitLsn, bytes32 key, bytes32 provenLeaf, bytes32 rowLeaf);
    /// @notice Paying `amount` to `recipient` failed.
    error PaymentFailed(address recipient, uint256 amount);

    /// @param owner_ The account that sets the threshold.
    /// @param registry_ The registry whose active keys sign.
    /// @param threshold_ Signatures needed (at least 1).
    /// @param asset_ The ERC-20 token withdrawals pay, or 0 for ETH.
    /// @param withdrawalSchema_ The withdrawal table's schema, as stored (e.g. "public").
    /// @param withdrawalTable_ The withdrawal table's name, as stored (e.g. "walproof_withdrawals").
    constructor(
        address owner_,
        KeyRegistry registry_,
        uint256 threshold_,
        address asset_,
        string memory withdrawalSchema_,
        string memory withdrawalTable_
    ) {
        if (threshold_ == 0) revert InvalidThreshold(threshold_);
        if (asset_ != address(0) && asset_.code.length == 0) revert AssetHasNoCode(asset_);
        owner = owner_;
        registry = registry_;
        asset = asset_;
        threshold = threshold_;
        withdrawalSchema = withdrawalSchema_;
        withdrawalTable = withdrawalTable_;
        _cachedChainId = block.chainid;
        _cachedThis = address(this);
        _cachedDomainSeparator = Eip712.separator(address(this));
        emit ThresholdSet(threshold_);
    }

    /// @notice Funds an ETH bridge. A bridge paying an ERC-20 asset refuses ETH.
    receive() external payable {
        if (asset != address(0)) revert EthNotAccepted(asset);
    }

    // ---------------------------------------------------------------- roots

    /// @notice Accepts `roots`, each signed by the signature set at the same position.
    /// @dev For each root: its commit LSN above the last accepted one (and above the previous
    /// root of the batch); its signatures valid, from active keys, strictly ascending by
    /// signer, at least {threshold} of them. Emits {RootCommitted} per root. Anyone may relay.
    /// @param roots The attestations, in increasing commit LSN order.
    /// @param signatures `signatures[i]` are the validators' signatures of `roots[i]`.
    function commitRoots(RootAttestation[] calldata roots, bytes[][] calldata signatures) external {
        uint256 count = roots.length;
        if (signatures.length != count) revert LengthMismatch(count, signatures.length);
        uint256 need = threshold;
        uint64 last = lastCommitLsn;
        bytes32 separator = domainSeparator();
        for (uint256 i; i < count; ++i) {
            RootAttestation calldata attestation = roots[i];
            uint64 commitLsn = attestation.commitLsn;
            if (commitLsn <= last) revert LsnNotIncreasing(commitLsn, last);
            bytes32 digest = Eip712.digest(separator, _rootStructHash(attestation));
            uint256 signers = _checkSigners(digest, signatures[i], need);
            bytes32 root = attestation.root;
            _roots[commitLsn] = root == bytes32(0) ? EMPTY_ROOT_SLOT : root;
            emit RootCommitted(commitLsn, root, attestation.ledgerHash, signers);
            last = commitLsn;
        }
        lastCommitLsn = last;
    }

    /// @notice The root accepted for `commitLsn`, and whether there is one (the empty tree's
    /// root is 0, so `known` tells it from "none").
    function rootOf(uint64 commitLsn) public view returns (bytes32 root, bool known) {
        bytes32 slot = _roots[commitLsn];
        if (slot == EMPTY_ROOT_SLOT) return (bytes32(0), true);
        return (slot, slot != bytes32(0));
    }

    // ---------------------------------------------------------- withdrawals

    /// @notice Pays withdrawal `approval.id` — `approval.amount` of the asset to
    /// `approval.recipient` — approved by a threshold of validators. Anyone may relay.
    /// @param approval The approved withdrawal.
    /// @param signatures The validators' signatures of `approval`, ascending by signer.
    function withdraw(WithdrawalApproval calldata approval, bytes[] calldata signatures) external {
        uint256 id = approval.id;
        if (paid(id)) revert AlreadyPaid(id);
        _checkSigners(withdrawalApprovalDigest(approval), signatures, threshold);
        _pay(id, approval.recipient, approval.amount, approval.commitLsn, false);
    }

    /// @notice Pays the withdrawal table row (`id`, `recipient`, `amount`) proven to be in the
    /// accepted root of `commitLsn`. Anyone may relay.
    /// @dev The texts are the row's values exactly as Postgres prints them. They are parsed
    /// (`id` and `amount` canonical unsigned decimals, `recipient` `0x` and 40 hex digits), and
    /// the row's tree key and leaf are computed from them exactly as the committer computes
    /// them; `nodes` must show that leaf under that key (see {SmtProof}).
    /// @param commitLsn An accepted root's commit LSN.
    /// @param id The row's `id` (e.g. "42").
    /// @param recipient The row's `recipient` as stored, lower case
    /// (e.g. "0x70997970c51812dc3a010c7d01b50e0d17dc79c8").
    /// @param amount The row's `amount` in base units (e.g. "1000000000000000000").
    /// @param nodes The proof: the tree nodes from the root down the row's key.
    function withdrawWithProof(
        uint64 commitLsn,
        string calldata id,
        string calldata recipient,
        string calldata amount,
        bytes[] calldata nodes
    ) external {
        uint256 idValue = RowText.parseUint(bytes(id));
        if (paid(idValue)) revert AlreadyPaid(idValue);
        address to = RowText.parseAddress(bytes(recipient));
        uint256 value = RowText.parseUint(bytes(amount));
        _requireRow(commitLsn, bytes(id), RowHash.withdrawalLeaf(bytes(id), bytes(recipient), bytes(amount)), nodes);
        _pay(idValue, to, value, commitLsn, true);
    }

    /// @notice Whether withdrawal `id` was paid (by either path).
    function paid(uint256 id) public view returns (bool) {
        return (_paidWords[id >> 8] >> (id & 0xff)) & 1 != 0;
    }

    // ---------------------------------------------------------------- admin

    /// @notice Sets the number of signatures a root or an approval needs. Owner only.
    /// @param threshold_ At least 1. IMPORTANT: any `threshold_` active keys together can
    /// commit any root and approve any withdrawal (safety), and fewer keys than that online
    /// stop both (liveness).
    function setThreshold(uint256 threshold_) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (threshold_ == 0) revert InvalidThreshold(threshold_);
        threshold = threshold_;
        emit ThresholdSet(threshold_);
    }

    // ---------------------------------------------------------------- EIP-712

    /// @notice The EIP-712 domain separator: walproof / 1 / this chain / this bridge.
    function domainSeparator() public view returns (bytes32) {
        if (address(this) == _cachedThis && block.chainid == _cachedChainId) return _cachedDomainSeparator;
        return Eip712.separator(address(this));
    }

    /// @notice The digest validators sign for root attestation `a`.
    function rootAttestationDigest(RootAttestation calldata a) external view returns (bytes32) {
        return Eip712.digest(domainSeparator(), _rootStructHash(a));
    }

    /// @notice The digest validators sign for withdrawal approval `w`.
    function withdrawalApprovalDigest(WithdrawalApproval calldata w) public view returns (bytes32) {
        return Eip712.digest(
            domainSeparator(),
            keccak256(abi.encode(WITHDRAWAL_APPROVAL_TYPEHASH, w.id, w.recipient, w.amount, w.commitLsn))
        );
    }

    // ------------------------------------------------------------- internal

    function _rootStructHash(RootAttestation calldata a) private pure returns (bytes32) {
        return keccak256(abi.encode(ROOT_ATTESTATION_TYPEHASH, a.commitLsn, a.root, a.ledgerHash));
    }

    /// @dev Checks `signatures` of `digest` by the signature rules (see the contract's doc)
    /// with `need` required, and returns how many signed.
    function _checkSigners(bytes32 digest, bytes[] calldata signatures, uint256 need)
        private
        view
        returns (uint256 count)
    {
        count = signatures.length;
        if (count < need) revert BelowThreshold(count, need);
        address previous;
        for (uint256 i; i < count; ++i) {
            address signer = _recover(digest, signatures[i], i);
            if (signer <= previous) revert SignersNotAscending(i, signer, previous);
            if (!registry.isActive(signer)) revert SignerNotActive(signer);
            previous = signer;
        }
    }

    /// @dev The signer of signature `index`, `r ‖ s ‖ v`, of `digest`.
    function _recover(bytes32 digest, bytes calldata signature, uint256 index) private pure returns (address signer) {
        if (signature.length != 65) revert BadSignature(index);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_ORDER) revert HighS(index);
        if (v != 27 && v != 28) revert BadSignature(index); // (ecrecover fails on them too)
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert BadSignature(index);
    }

    /// @dev Reverts unless `nodes` prove the withdrawal row with leaf `rowLeaf` and id text
    /// `id` in the accepted root of `commitLsn`.
    function _requireRow(uint64 commitLsn, bytes calldata id, bytes32 rowLeaf, bytes[] calldata nodes) private view {
        (bytes32 root, bool known) = rootOf(commitLsn);
        if (!known) revert UnknownRoot(commitLsn);
        bytes32 key = RowHash.withdrawalKey(bytes(withdrawalSchema), bytes(withdrawalTable), id);
        (bool present, bytes32 leaf) = SmtProof.verify(root, key, nodes);
        if (!present) revert RowNotInRoot(commitLsn, key);
        if (leaf != rowLeaf) revert RowMismatch(commitLsn, key, leaf, rowLeaf);
    }

    /// @dev Marks `id` paid, then pays: a reentrant call finds it paid.
    function _pay(uint256 id, address recipient, uint256 amount, uint64 commitLsn, bool byProof) private {
        if (amount == 0) revert ZeroAmount(id);
        _paidWords[id >> 8] |= uint256(1) << (id & 0xff);
        emit WithdrawalPaid(id, recipient, amount, commitLsn, byProof);
        if (asset == address(0)) {
            bool ok;
            // All gas forwarded; the recipient's return data is not copied (it cannot make
            // the relayer pay for a large one).
            assembly ("memory-safe") {
                ok := call(gas(), recipient, amount, 0, 0, 0, 0)
            }
            if (!ok) revert PaymentFailed(recipient, amount);
        } else {
            (bool ok, bytes memory data) = asset.call(abi.encodeCall(IERC20Transfer.transfer, (recipient, amount)));
            // Tokens that return nothing count as success (the asset has code: checked at
            // construction); tokens that return a value must return true.
            if (!ok || (data.length != 0 && (data.length < 32 || abi.decode(data, (uint256)) != 1))) {
                revert PaymentFailed(recipient, amount);
            }
        }
    }
}
