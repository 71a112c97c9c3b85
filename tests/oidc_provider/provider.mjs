// A real OpenID Provider for the tests: panva/oidc-provider with its development
// interactions (a sign-in form that accepts any login, then a consent form).
// PORT and REDIRECT_URI come from the environment; the account id is the login typed in.
import Provider from 'oidc-provider';
const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'chatcluster',
    client_secret: 'chatcluster-test-secret',
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  features: { devInteractions: { enabled: true } },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, name: `Person ${id}`, preferred_username: id }; } };
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`oidc provider ready at ${issuer}`));
