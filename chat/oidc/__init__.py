"""Sign in with an OpenID Provider: authorization code flow with PKCE, through Authlib."""
