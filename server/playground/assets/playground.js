// The playground: GraphiQL from this server's own files, talking to
// /graphql (and its websocket) with the token. In dev mode, opened from
// this machine, the page carries the dev token; otherwise the user pastes
// one, kept in session storage. The schema is fetched with the token at
// once, so docs and completion work from the start.
(function () {
  'use strict';
  var key = 'halo.token';
  var given = document.body.dataset.token;
  if (given) {
    sessionStorage.setItem(key, given);
  }
  var form = document.getElementById('token-form');
  var mount = document.getElementById('graphiql');

  function start(token) {
    form.hidden = true;
    var ws = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
    var fetcher = GraphiQL.createFetcher({
      url: location.origin + '/graphql',
      subscriptionUrl: ws,
      headers: { Authorization: 'Bearer ' + token },
      wsConnectionParams: { Authorization: 'Bearer ' + token },
    });
    ReactDOM.createRoot(mount).render(
      React.createElement(GraphiQL, {
        fetcher: fetcher,
        defaultHeaders: JSON.stringify({ Authorization: 'Bearer ' + token }, null, 2),
        defaultQuery: '{\n  viewer { workspace scopes }\n  profiles(first: 5) { totalCount nodes { id traits } }\n}\n',
      })
    );
  }

  var token = sessionStorage.getItem(key);
  if (token) {
    start(token);
    return;
  }
  mount.textContent = '';
  form.hidden = false;
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var t = document.getElementById('token').value.trim().replace(/^Bearer\s+/i, '');
    if (t) {
      sessionStorage.setItem(key, t);
      start(t);
    }
  });
})();
