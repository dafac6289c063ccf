"""Everything that touches the chain: protocol parameters, compilation, deployment, and the bindings that
every other role (servers, verifiers, clients, the dashboard) uses. Contract addresses and ABIs live in one
deployment file per chain id (see ``deployment.py``); nothing here hand-copies an ABI."""
