"""The transport floor: how a probe gets a connection and speaks the first bytes of a protocol.

Below the probers, above the leaves (settings, model, reasons, deadline, errors, recorder), and
importing neither probers nor anything above them:

    classify      exceptions -> reason codes, the one mapping used at every boundary
    tlsconfig     which CA bundle, the SSL contexts
    proxyenv      which proxy applies to a destination (curl's rules); no I/O
    connect       TCP connect, happy eyeballs (RFC 8305)
    http1         the HTTP/1.1 response head and body, read from a stream or a raw socket
    tunnel        a CONNECT tunnel through an HTTP proxy
    resolve       one shared lookup per name per run
    lookup        the stub resolver that asks DNS servers itself (dnspython)
    context       what every prober receives besides its target (plain data)
    dial          resolve, connect direct or tunnel: a connected socket
    x509          certificate facts (cryptography)
    handshake     a TLS handshake over memory BIOs, and its failure wording
    exchange      one HTTP/1.1 GET over dial (and TLS)
    smb2          the SMB2 NEGOTIATE codec
"""
