//go:build !linux

package netlab

import "errors"

// Do runs f in the namespace. Network namespaces exist only on Linux;
// elsewhere Do fails (and RequireRoot has skipped the test before).
func (ns *Namespace) Do(f func() error) error {
	return errors.New("netlab: network namespaces need Linux")
}
