//! anvil, through alloy: the chain the bridge contracts are tested on.

use alloy::providers::{Provider, ProviderBuilder};

#[tokio::test]
async fn anvil_answers_its_chain_id_through_alloy() {
    let stack = super::stack();
    let url: alloy::transports::http::reqwest::Url = stack.eth_rpc_url.parse().unwrap();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(80));
    stack.require_listening("anvil", &address).await.unwrap();
    let provider = ProviderBuilder::new().connect_http(url);
    assert_eq!(provider.get_chain_id().await.unwrap(), 31337);
    // A live chain, not a canned answer: anvil starts at block 0 and has funded dev accounts.
    let accounts = provider.get_accounts().await.unwrap();
    assert_eq!(accounts.len(), 10);
    assert!(provider.get_balance(accounts[0]).await.unwrap() > alloy::primitives::U256::ZERO);
}
