// wsnotify's CloudFront Function (runtime cloudfront-js-2.0, viewer request):
// it serves the seed's WebSocket URL, /api/v1/ws/{client_id}?token=..., in
// front of API Gateway, whose WebSocket routes have no path parameters. It
// rewrites the path to the stage's and moves the client id into the query
// string, where the $connect handler reads it on the raw API Gateway URL.
//
// template.yaml holds this file inline (CloudFormation wants the code in the
// template), through Fn::Sub: the stage name below is filled in there. A
// template check fails when the two differ, so edit this file and paste it.
// Keep dollar-brace out of the rest of the file: Fn::Sub would take it too.

var STAGE_PATH = '/${StageName}';

var PREFIX = '/api/v1/ws/';

// The server's rule for client ids (shared/event.ValidClientID), so that
// the edge answers 400 exactly where the server would.
var CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function handler(event) {
    var request = event.request;
    if (request.uri.indexOf(PREFIX) !== 0) {
        return refuse(404, 'Not Found', 'NOT_FOUND', 'no such path: connect to /api/v1/ws/{client_id}?token=...');
    }
    // CloudFront passes the path as the viewer sent it, percent-escapes
    // and all; the server reads the decoded segment.
    var clientId = request.uri.substring(PREFIX.length);
    try {
        clientId = decodeURIComponent(clientId);
    } catch (e) {
        clientId = '';
    }
    if (!CLIENT_ID.test(clientId)) {
        return refuse(400, 'Bad Request', 'BAD_REQUEST', 'client_id must be 1-128 characters of A-Z a-z 0-9 . _ : -');
    }
    request.uri = STAGE_PATH;
    // The path's client id wins: this replaces any client_id of the query
    // string, repeated ones (multiValue) included. token and the rest of
    // the query string pass through untouched.
    request.querystring.client_id = { value: clientId };
    return request;
}

// refuse answers at the edge in the shape of the service's error events.
// cloudfront-js-2.0 takes a generated response's body as an object: its
// encoding ('text' or 'base64') and its data.
function refuse(status, description, code, message) {
    return {
        statusCode: status,
        statusDescription: description,
        headers: { 'content-type': { value: 'application/json' } },
        body: { encoding: 'text', data: JSON.stringify({ type: 'error', error: message, code: code }) }
    };
}
