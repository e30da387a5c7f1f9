// Package memory is Creto's agent memory service (seed §4): what an agent
// observed, reasoned, said and learned, stored with a vector embedding so
// it can be searched by meaning, and read back by oversight to show an
// approver why an agent wants to act (seed §4.4).
//
// Memories are durable in the node's store (internal/kv) under "memory/",
// and every vector is also held in memory, in one contiguous float32 slice
// per agent, so a query is an exact cosine scan of that agent's memories
// only. At the sizes most agents reach (thousands to tens of thousands of
// memories each) the scan takes milliseconds and has perfect recall. An
// agent past Config.ApproximateAbove memories also gets an IVF index
// (ivf.go), calibrated at each build to recall@10 against the exact scan;
// see docs/memory.md for the figures.
//
// Every call names its caller. A caller reads and writes its own memories;
// any other access goes through the Authorizer, which by default refuses
// it, so a delegation service has to grant cross-agent reads explicitly.
//
// Vectors come from an Embedder. HashingEmbedder needs no model and no
// network; ExternalEmbedder declares the dimension of vectors a client
// computes itself (1536 for text-embedding-3-small). An index is bound to
// one embedder's model and dimension for its lifetime, so vectors of
// different models are never compared.
package memory
