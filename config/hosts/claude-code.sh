claude mcp add keyward -- /ABSOLUTE/PATH/TO/keyward --home /ABSOLUTE/PATH/TO/keyward-home serve
