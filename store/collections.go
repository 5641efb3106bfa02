package store

// SystemWorkspace holds Halo's own bookkeeping that spans workspaces. Token
// workspaces cannot start with "_", so no client can reach it.
const SystemWorkspace = "_system"
