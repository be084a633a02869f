package portmap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
	"github.com/huin/goupnp/ssdp"
)

// UPnP IGD through github.com/huin/goupnp: goupnp builds the SSDP search
// and filters its answers (ssdp.SSDPRawSearchCtx), decodes the device
// description (goupnp.RootDevice) and speaks SOAP to the WANIPConnection
// and WANPPPConnection services (dcps/internetgateway2). What goupnp's
// one-call discovery does is not used, because it would search from every
// interface of the host, wait out the whole search window, and fetch
// whatever location any responder names through http.DefaultClient
// (which honours HTTP_PROXY and follows redirects). Here:
//
//   - the search is sent from the gateway's local address only (Linux
//     then sends multicast out of the interface that owns the source
//     address), with the default multicast TTL of 1, and ends as soon as
//     the gateway itself answers (ssdpClient);
//   - a location, and every control URL, must name the gateway's address;
//   - every HTTP request goes through upnpHTTPClient: no proxy, no
//     redirects, connections only to the gateway, bodies cut at
//     upnpMaxBody.

const (
	// ssdpSearchTarget is what the search asks for. IGDv2 devices
	// answer a search for version 1 too.
	ssdpSearchTarget = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	// ssdpSends is how many copies of the search go out, a few
	// milliseconds apart, against the loss of one.
	ssdpSends = 2
	// upnpMaxBody caps a description or SOAP response; miniupnpd's
	// description is about 4 KB.
	upnpMaxBody = 256 << 10
	// upnpDescription names ferry's mappings in the router's table.
	upnpDescription = "ferry"
)

// UPnP error codes from the IGD WANIPConnection specification.
const (
	upnpConflict       = 718 // ConflictInMappingEntry
	upnpOnlyPermanent  = 725 // OnlyPermanentLeasesSupported
	upnpPortRandomTry  = 3   // random external ports tried after a conflict
	upnpPortRandomBase = 32768
)

// igdConn is what this package uses of a WAN connection service; the
// three generated clients (WANIPConnection1 and 2, WANPPPConnection1)
// share these methods.
type igdConn interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16, intClient string, enabled bool, desc string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	GetServiceClient() *goupnp.ServiceClient
}

var (
	_ igdConn = (*internetgateway2.WANIPConnection1)(nil)
	_ igdConn = (*internetgateway2.WANIPConnection2)(nil)
	_ igdConn = (*internetgateway2.WANPPPConnection1)(nil)
)

// upnpGateway is a discovered IGD connection service on the gateway.
type upnpGateway struct {
	conn     igdConn
	external netip.Addr
}

// upnpDiscover finds the gateway's IGD and its external address, within
// cfg.upnpTimeout.
func upnpDiscover(ctx context.Context, cfg Config, gw Gateway) (*upnpGateway, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.upnpTimeout)
	defer cancel()
	sc := &ssdpClient{cfg: cfg, gw: gw}
	resps, err := ssdp.SSDPRawSearchCtx(ctx, sc, ssdpSearchTarget, 1, ssdpSends)
	if err != nil {
		return nil, err
	}
	hc := upnpHTTPClient(cfg, gw)
	var errs []error
	for _, r := range resps {
		loc, err := r.Location()
		if err != nil || !onGateway(loc, gw) {
			errs = append(errs, fmt.Errorf("location %v not on the gateway", loc))
			continue
		}
		root, err := fetchDescription(ctx, hc, loc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range igdConns(root, loc) {
			sc := c.GetServiceClient().SOAPClient
			if !onGateway(&sc.EndpointURL, gw) {
				errs = append(errs, fmt.Errorf("control URL %v not on the gateway", sc.EndpointURL.String()))
				continue
			}
			sc.HTTPClient = *hc
			s, err := c.GetExternalIPAddressCtx(ctx)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ext, err := netip.ParseAddr(s)
			if err != nil || !ext.Is4() {
				errs = append(errs, fmt.Errorf("external address %q is not IPv4", s))
				continue
			}
			return &upnpGateway{conn: c, external: ext}, nil
		}
	}
	if len(errs) == 0 {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errors.New("portmap: no UPnP IGD answered")
	}
	return nil, fmt.Errorf("portmap: no usable UPnP IGD: %w", errors.Join(errs...))
}

// igdConns lists the root device's WAN connection services, IGDv2's
// first.
func igdConns(root *goupnp.RootDevice, loc *url.URL) []igdConn {
	var cs []igdConn
	if v2, err := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range v2 {
			cs = append(cs, c)
		}
	}
	if v1, err := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range v1 {
			cs = append(cs, c)
		}
	}
	if ppp, err := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range ppp {
			cs = append(cs, c)
		}
	}
	return cs
}

// onGateway reports whether u is an http URL whose host is the gateway's
// address (any port).
func onGateway(u *url.URL, gw Gateway) bool {
	if u == nil || u.Scheme != "http" {
		return false
	}
	a, err := netip.ParseAddr(u.Hostname())
	return err == nil && a.Unmap() == gw.IP
}

// fetchDescription fetches and decodes the device description at loc.
func fetchDescription(ctx context.Context, hc *http.Client, loc *url.URL) (*goupnp.RootDevice, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("portmap: device description: HTTP %s", resp.Status)
	}
	root := new(goupnp.RootDevice)
	dec := xml.NewDecoder(resp.Body)
	dec.DefaultSpace = goupnp.DeviceXMLNamespace
	if err := dec.Decode(root); err != nil {
		return nil, fmt.Errorf("portmap: device description: %w", err)
	}
	base := loc
	if root.URLBaseStr != "" {
		if base, err = url.Parse(root.URLBaseStr); err != nil {
			return nil, fmt.Errorf("portmap: device description: URLBase: %w", err)
		}
	}
	root.SetURLBase(base)
	return root, nil
}

// upnpHTTPClient returns the only HTTP client UPnP uses: it connects to
// the gateway's address and nowhere else, ignores proxy settings, follows
// no redirect, and cuts bodies at upnpMaxBody.
func upnpHTTPClient(cfg Config, gw Gateway) *http.Client {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil || ap.Addr().Unmap() != gw.IP {
				return nil, fmt.Errorf("portmap: refusing to connect to %s, not the gateway", addr)
			}
			return cfg.dialTCP(ctx, addr)
		},
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  cfg.upnpTimeout,
		MaxResponseHeaderBytes: 16 << 10,
	}
	return &http.Client{
		Transport: limitBody{tr},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: cfg.upnpTimeout,
	}
}

// limitBody cuts every response body at upnpMaxBody.
type limitBody struct{ rt http.RoundTripper }

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, upnpMaxBody), resp.Body}
	return resp, nil
}

// upnpMap maps internal port on proto to an external port for lifetime
// (0 asks for a permanent mapping, which the keeper still deletes),
// preferring ext. It returns the external port and the lease granted.
func upnpMap(ctx context.Context, cfg Config, gw Gateway, u *upnpGateway, proto string, internal, ext uint16, lifetime time.Duration) (uint16, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.upnpTimeout)
	defer cancel()
	if ext == 0 {
		ext = internal
	}
	lease := seconds(lifetime)
	try := func(port uint16) error {
		err := u.conn.AddPortMappingCtx(ctx, "", port, upnpProto(proto), internal, gw.Local.String(), true, upnpDescription, lease)
		if upnpErrorCode(err) == upnpOnlyPermanent && lease != 0 {
			lease = 0
			err = u.conn.AddPortMappingCtx(ctx, "", port, upnpProto(proto), internal, gw.Local.String(), true, upnpDescription, lease)
		}
		return err
	}
	err := try(ext)
	for i := 0; i < upnpPortRandomTry && upnpErrorCode(err) == upnpConflict; i++ {
		ext = uint16(upnpPortRandomBase + rand.IntN(65536-upnpPortRandomBase))
		err = try(ext)
	}
	if err != nil {
		return 0, 0, err
	}
	return ext, time.Duration(lease) * time.Second, nil
}

// upnpUnmap deletes the mapping of external port ext on proto.
func upnpUnmap(ctx context.Context, u *upnpGateway, proto string, ext uint16) error {
	return u.conn.DeletePortMappingCtx(ctx, "", ext, upnpProto(proto))
}

func upnpProto(proto string) string {
	if proto == "tcp" {
		return "TCP"
	}
	return "UDP"
}

// upnpErrorCode returns the UPnP error code of a SOAP fault, or 0.
func upnpErrorCode(err error) int {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return f.Detail.UPnPError.Errorcode
	}
	return 0
}

// ssdpClient performs goupnp's SSDP search (it implements
// ssdp.HTTPUClient) from the gateway's local address, and returns as soon
// as the gateway answers rather than waiting out the search window.
// Answers from any other address are dropped unread.
type ssdpClient struct {
	cfg Config
	gw  Gateway
}

var ssdpAddr = netip.MustParseAddrPort("239.255.255.250:1900")

// Do sends req numSends times and returns the gateway's first parseable
// answer, or none when timeout or the request's context ends first.
func (s *ssdpClient) Do(req *http.Request, timeout time.Duration, numSends int) ([]*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), timeout)
	defer cancel()
	conn, err := s.cfg.listenUDP(s.gw.Local)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	// The request line and headers, as goupnp's own httpu client writes
	// them (headers as given: SSDP's are case-sensitive in practice).
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", req.Method, req.URL.RequestURI())
	if err := req.Header.Write(&b); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	dst := net.UDPAddrFromAddrPort(ssdpAddr)
	for i := 0; i < numSends; i++ {
		if _, err := conn.WriteToUDP(b.Bytes(), dst); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil // the search window ended: no answer
			}
			return nil, err
		}
		if from.Addr().Unmap() != s.gw.IP {
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(buf[:n])), req)
		if err != nil || resp.Header.Get("ST") != first(req.Header["ST"]) {
			continue
		}
		return []*http.Response{resp}, nil
	}
}

var _ ssdp.HTTPUClient = (*ssdpClient)(nil)

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
