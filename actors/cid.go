package actors

import "github.com/ipfs/go-cid"

func cidFromBytes(b []byte) (int, cid.Cid, error) { return cid.CidFromBytes(b) }
