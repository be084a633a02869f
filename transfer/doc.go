// Package transfer is ferry's transfer engine: manifests, chunking, hashing,
// compression, resume and safe writing on the receiving side, and the
// progress events the CLI and the GUI consume. It sits on package transport
// and knows nothing of widgets or terminals.
package transfer
