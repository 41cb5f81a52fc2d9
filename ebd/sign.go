package ebd

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// certSNLen is the length of a platform certificate serial in bytes.
const certSNLen = 6

// Signature is an EBDS file. Both field variants are read: the full one
// (SignatureCert, SignatureTime, the two algorithms) and the simple one
// (CertSN, SignatureAlgorithm "SM2-SM3"). The full one is written.
type Signature struct {
	XMLName            xml.Name       `xml:"Signature"`
	Version            string         `xml:"Version"`
	RelatedEBD         Related        `xml:"RelatedEBD"`
	Cert               *SignatureCert `xml:"SignatureCert,omitempty"`
	CertSN             string         `xml:"CertSN,omitempty"`
	Time               string         `xml:"SignatureTime,omitempty"`
	DigestAlgorithm    string         `xml:"DigestAlgorithm,omitempty"`
	SignatureAlgorithm string         `xml:"SignatureAlgorithm"`
	Value              string         `xml:"SignatureValue"`
}

// SignatureCert names the signing certificate.
type SignatureCert struct {
	CertType string `xml:"CertType"`
	IssuerID string `xml:"IssuerID"`
	CertSN   string `xml:"CertSN"`
}

// Cert is a trusted platform certificate.
type Cert struct {
	SN       string // 12 lowercase hex digits
	Subject  string
	NotAfter time.Time
	cert     *smx509.Certificate
	pub      *ecdsa.PublicKey
}

// Trust holds the superior platforms' certificates, by serial.
type Trust struct{ certs map[string]*Cert }

// ParseTrust reads PEM certificates with SM2 keys and 6-byte serials.
func ParseTrust(pemData []byte) (*Trust, error) {
	t := &Trust{certs: map[string]*Cert{}}
	for n := 1; ; n++ {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n, b.Type)
		}
		c, err := parseCert(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n, err)
		}
		if _, dup := t.certs[c.SN]; dup {
			return nil, fmt.Errorf("certificate %d: serial %s appears twice", n, c.SN)
		}
		t.certs[c.SN] = c
	}
	if len(t.certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return t, nil
}

func parseCert(der []byte) (*Cert, error) {
	x, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pub, ok := x.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != sm2.P256() {
		return nil, errors.New("its key is not an SM2 key")
	}
	sn := x.SerialNumber.Bytes()
	if len(sn) > certSNLen || x.SerialNumber.Sign() <= 0 {
		return nil, fmt.Errorf("serial %x is not 1..%d bytes", sn, certSNLen)
	}
	return &Cert{SN: formatSN(x.SerialNumber), Subject: x.Subject.String(), NotAfter: x.NotAfter, cert: x, pub: pub}, nil
}

func formatSN(n *big.Int) string { return fmt.Sprintf("%012x", n) }

// Certs lists the trusted certificates, by serial.
func (t *Trust) Certs() []*Cert {
	out := make([]*Cert, 0, len(t.certs))
	for _, c := range t.certs {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SN < out[j].SN })
	return out
}

// Verify checks an EBDS signature file against the raw EBDB bytes it signs
// and the EBD id they must name. Every failure is result code 4.
func (t *Trust) Verify(ebdb, sigFile []byte, id string, now time.Time) (*Cert, error) {
	var s Signature
	if err := decodeXML(sigFile, &s); err != nil {
		return nil, fail(ResultSignature, "signature file: %v", err)
	}
	if got := strings.TrimSpace(s.RelatedEBD.EBDID); got != id {
		return nil, fail(ResultSignature, "signature file: RelatedEBD/EBDID %q is not the packet's %q", got, id)
	}
	alg := strings.ToUpper(strings.TrimSpace(s.SignatureAlgorithm))
	dig := strings.ToUpper(strings.TrimSpace(s.DigestAlgorithm))
	if !(alg == "SM2" && (dig == "SM3" || dig == "")) && alg != "SM2-SM3" {
		return nil, fail(ResultSignature, "signature algorithm %q/%q is not SM2 with SM3", s.SignatureAlgorithm, s.DigestAlgorithm)
	}
	snText := s.CertSN
	if s.Cert != nil {
		snText = s.Cert.CertSN
	}
	sn, err := parseSN(snText)
	if err != nil {
		return nil, fail(ResultSignature, "signature file: CertSN: %v", err)
	}
	c := t.certs[sn]
	if c == nil {
		return nil, fail(ResultSignature, "certificate %s is not a configured platform certificate", sn)
	}
	if now.Before(c.cert.NotBefore) || now.After(c.NotAfter) {
		return nil, fail(ResultSignature, "certificate %s is valid %s to %s only", sn, FormatTime(c.cert.NotBefore), FormatTime(c.NotAfter))
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Value))
	if err != nil {
		return nil, fail(ResultSignature, "SignatureValue is not base64")
	}
	der, err := signatureDER(raw, sn)
	if err != nil {
		return nil, fail(ResultSignature, "SignatureValue: %v", err)
	}
	if !sm2.VerifyASN1WithSM2(c.pub, nil, ebdb, der) {
		return nil, fail(ResultSignature, "the SM2 signature does not match the EBDB file and certificate %s", sn)
	}
	return c, nil
}

// parseSN reads a certificate serial written in hex (12 digits usual).
func parseSN(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	b, err := hex.DecodeString(strings.Repeat("0", len(s)%2) + s)
	if err != nil || len(s) == 0 {
		return "", fmt.Errorf("%q is not a hex serial", s)
	}
	n := new(big.Int).SetBytes(b)
	if n.Sign() == 0 || len(n.Bytes()) > certSNLen {
		return "", fmt.Errorf("%q is not a %d-byte serial", s, certSNLen)
	}
	return formatSN(n), nil
}

// signatureDER turns a SignatureValue into ASN.1: 64 bytes r‖s, 74 bytes
// time(4) ‖ serial(6) ‖ r‖s (the serial must be the certificate's), or
// DER as it is.
func signatureDER(raw []byte, sn string) ([]byte, error) {
	switch len(raw) {
	case 74:
		if got := hex.EncodeToString(raw[4:10]); got != sn {
			return nil, fmt.Errorf("the serial inside it (%s) is not the certificate's (%s)", got, sn)
		}
		raw = raw[10:]
		fallthrough
	case 64:
		r, s := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
		return asn1.Marshal(struct{ R, S *big.Int }{r, s})
	}
	var v struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(raw, &v); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%d bytes is neither r‖s (64), time‖serial‖r‖s (74) nor DER", len(raw))
	}
	return raw, nil
}

// Signer signs this platform's packets with its SM2 key.
type Signer struct {
	key      *sm2.PrivateKey
	sn       string
	notAfter time.Time
}

// NotAfter is when the signer's certificate expires (zero: not known).
func (s *Signer) NotAfter() time.Time { return s.notAfter }

// SN is the signer's certificate serial, 12 hex digits.
func (s *Signer) SN() string { return s.sn }

// ParseSigner reads the platform's SM2 private key (PEM: PKCS#8 or SEC1 "EC
// PRIVATE KEY") and its certificate (PEM), whose serial names the key in
// every signature. The key must match the certificate.
func ParseSigner(keyPEM, certPEM []byte) (*Signer, error) {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("key: no PEM block found")
	}
	var key *sm2.PrivateKey
	switch kb.Type {
	case "PRIVATE KEY":
		k, err := smx509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		var ok bool
		if key, ok = k.(*sm2.PrivateKey); !ok {
			return nil, errors.New("key: not an SM2 key")
		}
	case "EC PRIVATE KEY", "SM2 PRIVATE KEY":
		k, err := smx509.ParseSM2PrivateKey(kb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		key = k
	default:
		return nil, fmt.Errorf("key: PEM block %q, want PRIVATE KEY", kb.Type)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("certificate: no PEM CERTIFICATE block found")
	}
	c, err := parseCert(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if !c.pub.Equal(&key.PublicKey) {
		return nil, errors.New("the key does not belong to the certificate")
	}
	return &Signer{key: key, sn: c.SN, notAfter: c.NotAfter}, nil
}

// NewSigner signs with key under certificate serial sn (12 hex digits).
func NewSigner(key *sm2.PrivateKey, sn string) (*Signer, error) {
	n, err := parseSN(sn)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, sn: n}, nil
}

// Sign makes the EBDS file for the raw EBDB bytes of EBD id.
func (s *Signer) Sign(ebdb []byte, id string, now time.Time) ([]byte, error) {
	der, err := s.key.SignWithSM2(rand.Reader, nil, ebdb)
	if err != nil {
		return nil, fmt.Errorf("sm2 sign: %w", err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return nil, err
	}
	val := make([]byte, 74)
	binary.BigEndian.PutUint32(val, uint32(now.Unix()))
	snb, _ := hex.DecodeString(s.sn)
	copy(val[4:10], snb)
	rs.R.FillBytes(val[10:42])
	rs.S.FillBytes(val[42:74])
	return encodeXML(Signature{Version: "1.0", RelatedEBD: Related{EBDID: id},
		Cert: &SignatureCert{CertType: "01", IssuerID: "01", CertSN: s.sn}, Time: strconv.FormatInt(now.Unix(), 16),
		DigestAlgorithm: "SM3", SignatureAlgorithm: "SM2", Value: base64.StdEncoding.EncodeToString(val)})
}
