# keyward over HTTP: start `keyward serve --http 127.0.0.1:8645` yourself (or as a service), then:
claude mcp add --transport http keyward http://127.0.0.1:8645/mcp \
  --header "Authorization: Bearer $(keyward --home /ABSOLUTE/PATH/TO/keyward-home token create --name claude-code)"
